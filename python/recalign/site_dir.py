"""Prints, for `meson install`, the site directory of this interpreter that lies under PREFIX
(the shortest one: /usr/lib/python3/dist-packages rather than /usr/local/... for /usr), or an
empty line if it searches none there; then the RUNPATH that leads from the installed package
to LIBDIR ($ORIGIN-relative, so a DESTDIR-staged or moved prefix still finds librecalign).

Usage: site_dir.py PREFIX LIBDIR   (both absolute)
"""
import os
import site
import sys

prefix, libdir = (os.path.normpath(a) for a in sys.argv[1:3])
under = [d for d in site.getsitepackages() if os.path.normpath(d).startswith(prefix.rstrip('/') + '/')]
if not under:
    print('')
    print('')
else:
    best = min(under, key=lambda d: len(os.path.relpath(d, prefix).split(os.sep)))
    package = os.path.join(os.path.normpath(best), 'recalign')
    print(os.path.relpath(best, prefix))
    print(os.path.join('$ORIGIN', os.path.relpath(libdir, package)))
