#!/usr/bin/env python3
"""Builds a corpus of hostile (and a few good) artifacts for chom-stage.

    corpus.py OUTDIR ABSDIR

OUTDIR receives one archive per case, named for the case. ABSDIR is an
absolute directory (outside any BASE) used wherever a case needs an absolute
path, so that nothing real on the machine is ever named: the tests check that
nothing appears there. Standard library only.

Entries a hostile case would write if obeyed carry a distinctive name
(evil-*, hl-*, ...) so that the tests can look for them in the message and on
disk.
"""

import gzip
import io
import os
import stat
import sys
import tarfile
import time
import zipfile

MTIME = int(time.time())


def info(name, type_=tarfile.REGTYPE, mode=0o644, size=0, linkname="",
         **kw):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def file_(name, data=b"", mode=0o644, **kw):
    if isinstance(data, str):
        data = data.encode()
    return info(name, size=len(data), mode=mode, **kw), io.BytesIO(data)


def dir_(name, mode=0o755):
    return info(name, tarfile.DIRTYPE, mode), None


def symlink(name, target):
    return info(name, tarfile.SYMTYPE, 0o777, linkname=target), None


def hardlink(name, target, data=b""):
    """A hard link entry. With data, a careless extractor writes the data
    into the link's target (size > 0 on a hard link is legal in pax)."""
    ti = info(name, tarfile.LNKTYPE, 0o644, size=len(data), linkname=target)
    if data:  # libarchive honours a hard link's size given in pax
        ti.pax_headers = {"size": str(len(data))}
    return ti, (io.BytesIO(data) if data else None)


def device(name, type_, major, minor):
    return info(name, type_, 0o644, devmajor=major, devminor=minor), None


class Zeros(io.RawIOBase):
    """n zero bytes, read in pieces, never held in memory at once."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def write_tar(path, members, mode="w", fmt=tarfile.GNU_FORMAT,
              errors="surrogateescape", **kw):
    with tarfile.open(path, mode, format=fmt, encoding="utf-8",
                      errors=errors, **kw) as t:
        for ti, f in members:
            t.addfile(ti, f)


def write_zip(path, members):
    """members: (name, data, unix mode or None)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in members:
            zi = zipfile.ZipInfo(name, date_time=time.gmtime(MTIME)[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                zi.create_system = 3  # Unix: the mode is in external_attr
                zi.external_attr = (mode & 0xFFFF) << 16
            z.writestr(zi, data)


def good_members():
    return [
        dir_("public/"),
        file_("public/index.html", "<h1>hello</h1>\n"),
        dir_("public/css/"),
        file_("public/css/app.css", "body{}\n"),
        file_("artisan", "#!/usr/bin/env php\n", mode=0o755),
        dir_("storage/"),
        dir_("storage/app/"),
        file_("storage/app/seed.txt", "seed\n"),
        symlink("public/storage", "../storage/app"),
        hardlink("public/index2.html", "public/index.html"),
    ]


def main():
    if len(sys.argv) != 3 or not os.path.isabs(sys.argv[2]):
        sys.exit("usage: corpus.py OUTDIR ABSDIR (ABSDIR absolute)")
    out, absdir = sys.argv[1], sys.argv[2].rstrip("/")
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731

    # --- good ---------------------------------------------------------
    write_tar(p("good.tar.gz"), good_members(), "w:gz")
    write_tar(p("good.tar"), good_members())

    # setuid/setgid files and a foreign owner: allowed, bits stripped,
    # owner not restored.
    write_tar(p("setuid.tar"), [
        dir_("bin/"),
        file_("bin/suid", "#!/bin/sh\n", mode=0o4755, uid=4242, gid=4242,
              uname="nobody4242", gname="nobody4242"),
        file_("bin/sgid", "#!/bin/sh\n", mode=0o2755),
        file_("bin/both", "#!/bin/sh\n", mode=0o6755),
    ])

    # --- names --------------------------------------------------------
    write_tar(p("dotdot.tar.gz"), [file_("../evil", "evil\n")], "w:gz")
    write_tar(p("dotdot-middle.tar"), [
        dir_("a/"), file_("a/../../evil-mid", "evil\n")])
    write_tar(p("dotdot-dir.tar"), [dir_("../evil-dir/")])
    write_tar(p("absolute.tar"), [
        file_(absdir + "/chom-evil-abs", "evil\n")])
    # ustar name harmless, pax path hostile: the pax header wins.
    ti, f = file_("innocent", "evil\n")
    ti.pax_headers = {"path": "../evil-pax"}
    write_tar(p("pax-dotdot.tar"), [(ti, f)], fmt=tarfile.PAX_FORMAT)
    # a name longer than ustar's 100 bytes (GNU long name record)
    write_tar(p("longname-dotdot.tar"), [
        file_("x" * 120 + "/../../evil-long", "evil\n")])
    write_tar(p("newline.tar"), [file_("evil-nl\nINJECTED", "x\n")])
    write_tar(p("ctrl.tar"), [file_("evil-esc\x1b[2Jx", "x\n")])
    write_tar(p("badutf8.tar"), [
        file_(b"evil-utf8\xff\xfe".decode("utf-8", "surrogateescape"),
              "x\n")])

    # --- symlinks -----------------------------------------------------
    write_tar(p("symlink-escape.tar"), [
        symlink("link-escape", "../../outside")])
    write_tar(p("symlink-escape-deep.tar"), [
        dir_("a/"), dir_("a/b/"),
        symlink("a/b/link-deep", "../../../outside")])
    write_tar(p("symlink-absolute.tar"), [symlink("link-abs", "/etc")])
    # Each link stays inside on its own; followed one after the other the
    # second one lands in BASE: x/y/z/up -> the release root, and
    # chain -> x/y/z/up/../.. -> two levels above it.
    write_tar(p("symlink-chain.tar"), [
        dir_("x/"), dir_("x/y/"), dir_("x/y/z/"),
        symlink("x/y/z/up", "../../.."),
        symlink("chain", "x/y/z/up/../.."),
    ])
    write_tar(p("through-symlink.tar"), [
        dir_("sub/"), symlink("d", "sub"), file_("d/x-through", "x\n")])
    write_tar(p("through-symlink-dot.tar"), [
        symlink("dot", "."), file_("dot/x-dot", "x\n")])
    write_tar(p("through-symlink-esc.tar"), [
        symlink("esc", ".."), file_("esc/x-esc", "evil\n")])
    # ustar linkname harmless, pax linkpath absolute: the pax header wins
    ti, f = symlink("link-pax", "inside")
    ti.pax_headers = {"linkpath": "/etc"}
    write_tar(p("pax-symlink.tar"), [(ti, f)], fmt=tarfile.PAX_FORMAT)
    # an allowed symlink, then a directory of its name, then a file in it
    write_tar(p("symlink-then-dir.tar"), [
        dir_("sub/"), symlink("sd-link", "sub"), dir_("sd-link/"),
        file_("sd-link/x-sd", "x\n")])
    # an allowed symlink, then a regular file of the same name: a careless
    # extractor would write through the link
    write_tar(p("duplicate-symlink.tar"), [
        dir_("sub/"), file_("sub/target", "t\n"),
        symlink("sl-dup", "sub/target"), file_("sl-dup", "evil\n")])

    # --- hard links ---------------------------------------------------
    # with data: a careless extractor links to the victim, then writes it
    write_tar(p("hardlink-outside.tar"), [
        hardlink("hl-out", "../../victim", b"EVIL\n")], fmt=tarfile.PAX_FORMAT)
    write_tar(p("hardlink-absolute.tar"), [
        hardlink("hl-abs", absdir + "/victim", b"EVIL\n")],
        fmt=tarfile.PAX_FORMAT)
    write_tar(p("hardlink-dotdot-target.tar"), [
        dir_("sub/"), hardlink("hl-dd", "sub/../../../victim", b"EVIL\n")],
        fmt=tarfile.PAX_FORMAT)
    write_tar(p("hardlink-unknown.tar"), [hardlink("hl-unknown", "nosuch")])
    # to an entry that comes later: unknown when the link is made
    write_tar(p("hardlink-forward.tar"), [
        hardlink("hl-fwd", "later"), file_("later", "x\n")])
    write_tar(p("hardlink-dir.tar"), [dir_("sub/"), hardlink("hl-dir", "sub")])

    # --- special files ------------------------------------------------
    write_tar(p("device.tar"), [device("dev-null", tarfile.CHRTYPE, 1, 3)])
    write_tar(p("device-block.tar"), [
        device("dev-block", tarfile.BLKTYPE, 7, 0)])
    write_tar(p("fifo.tar"), [(info("a-fifo", tarfile.FIFOTYPE, 0o644), None)])
    write_zip(p("socket.zip"), [("a-socket", b"", stat.S_IFSOCK | 0o644)])

    # --- duplicates ---------------------------------------------------
    write_tar(p("duplicate.tar"), [
        file_("dup.txt", "first\n"), file_("dup.txt", "second\n")])

    # --- zip ----------------------------------------------------------
    write_zip(p("zip-dotdot.zip"), [("../evil-zip", b"evil\n", None)])
    write_zip(p("zip-absolute.zip"), [
        (absdir + "/chom-evil-zip", b"evil\n", None)])
    write_zip(p("zip-symlink.zip"), [
        ("link-zip", b"../../outside", stat.S_IFLNK | 0o777)])
    # a backslash is an ordinary character on Unix; whatever a reader makes
    # of it, nothing may land outside
    write_zip(p("zip-backslash.zip"), [("..\\evil-bs", b"evil\n", None)])
    write_zip(p("good.zip"), [
        ("public/index.html", b"<h1>hello</h1>\n", 0o100644),
        ("artisan", b"#!/usr/bin/env php\n", 0o100755)])

    # --- limits -------------------------------------------------------
    # 64 MiB of zeros, a few tens of KiB on disk
    with gzip.open(p("bomb.tar.gz"), "wb", compresslevel=9) as g:
        with tarfile.open(fileobj=g, mode="w|", format=tarfile.GNU_FORMAT) \
                as t:
            t.addfile(info("zeros.bin", size=64 << 20), Zeros(64 << 20))
    # a path longer than PATH_MAX: fails cleanly
    write_tar(p("longpath.tar"), [file_("d/" * 2500 + "evil-deep", "x\n")])
    write_tar(p("many-files.tar"),
              [dir_("many/")] +
              [file_("many/f%04d" % i, "%d\n" % i) for i in range(200)])

    # --- corrupt ------------------------------------------------------
    with open(p("good.tar.gz"), "rb") as f:
        data = f.read()
    with open(p("truncated.tar.gz"), "wb") as f:
        f.write(data[:len(data) // 2])
    with open(p("garbage.tar"), "wb") as f:
        f.write(os.urandom(8192))


if __name__ == "__main__":
    main()
