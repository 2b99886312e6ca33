"""Compile the record path (NDJSON line → store row) into ``src/logharbor/_native``.

``rowc`` is the C normaliser (``_native/rowc.c``, plain C against the CPython API, compiled as it
is with ``-O2``): it writes the rows of the lines it is sure of without the GIL and hands the
others to the compiled copy of the Python loop (``server/ingest/rowc_path.py``).

The compiled modules are the very sources of the Python path (``record``, ``dialects``,
``store.attributes``, ``store.rows``, ``ingest.ndjson``), copied with their imports of each other
pointed at ``logharbor._native`` and compiled by the machine's C compiler, so the compiled path
keeps Python's semantics (annotations are not read as C types: ``annotation_typing=False``).
``nginx_parsers`` holds the NGINX presets' generated parse functions (``formats/nginx_native.py``),
each used only by the digest of its source; ``nginx_encode`` (``_native/nginx_encode.c``, plain C)
is the agent's NGINX chunk path (``formats/nginx_chunk.py``), used only at its source's digest.
``BUILD.json`` records each source's SHA-256; ``logharbor.server.ingest.decoder`` uses the build
only while the sources still match it.

Usage: ``.venv/bin/python scripts/build_native.py`` (``scripts/install.sh`` runs it). Exit status
0 when built, 1 when it could not build (no Cython, no compiler or no Python headers): the reason
is printed and the Python path keeps running.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "logharbor"
OUT = PACKAGE / "_native"
sys.path.insert(0, str(ROOT / "src"))

from logharbor.server.ingest.decoder import SOURCES  # noqa: E402 - after the path tweak

#: the original module → the compiled copy's module, for every import between the copies
_RENAMES = {
    "logharbor.dialects": "logharbor._native.dialects",
    "logharbor.record": "logharbor._native.record",
    "logharbor.server.engine.store.attributes": "logharbor._native.attributes",
    "logharbor.server.engine.store.rows": "logharbor._native.rows",
    "logharbor.server.ingest.ndjson": "logharbor._native.ndjson",
}
_FROM_STORE = re.compile(r"^from logharbor\.server\.engine\.store import attributes as (\w+)$", re.M)


def rewrite(text: str) -> str:
    """``text`` with its imports of the compiled modules pointed at their compiled copies; refuses
    an import form it does not know (a copy importing the Python module would mix the two)."""
    text = _FROM_STORE.sub(r"from logharbor._native import attributes as \1", text)
    for old, new in _RENAMES.items():
        text = re.sub(rf"^(\s*from ){re.escape(old)}( import )", rf"\g<1>{new}\g<2>", text, flags=re.M)
    for old in _RENAMES:
        short = old.rsplit(".", 1)
        for pattern in (rf"\bimport {re.escape(old)}\b", rf"^\s*from {re.escape(old)} ",
                        rf"^\s*from {re.escape(short[0])} import .*\b{short[1]}\b"):
            if re.search(pattern, text, flags=re.M):
                raise SystemExit(f"build_native: an import of {old} it cannot point at the copy: {pattern}")
    return text


def main() -> int:
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError as exc:
        print(f"build_native: not built, {exc} (pip install cython)", file=sys.stderr)
        return 1
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").exists():
        print(f"build_native: not built, no Python headers in {include} (apt install python3-dev)",
              file=sys.stderr)
        return 1
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="logharbor-native-") as tmp:
        work = Path(tmp)
        pkg = work / "logharbor" / "_native"
        pkg.mkdir(parents=True)
        (work / "logharbor" / "__init__.py").write_text("")
        (pkg / "__init__.py").write_text("")
        extensions = []
        c_extensions: list[Extension] = []
        for name, rel in SOURCES.items():
            source = (PACKAGE / rel).read_bytes()
            digests[name] = hashlib.sha256(source).hexdigest()
            if rel.endswith(".c"):  # the C normaliser: compiled as it is (no Cython)
                c_copy = pkg / Path(rel).name
                c_copy.write_bytes(source)
                c_extensions.append(Extension(f"logharbor._native.{name}", [str(c_copy)],
                                              extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Werror",
                                                                  "-Wno-unused-parameter"]))
                continue
            copy = pkg / f"{name}.py"
            copy.write_text(rewrite(source.decode()))
            # gcc 12 warns -Warray-bounds on Cython's inlined comparisons with None (false positives)
            extensions.append(Extension(f"logharbor._native.{name}", [str(copy)],
                                        extra_compile_args=["-Wno-array-bounds"]))
        # the NGINX presets' generated parse functions (formats/nginx_native.py), used by digest
        from logharbor.formats.nginx_native import preset_module_source

        nginx_copy = pkg / "nginx_parsers.py"
        nginx_copy.write_text(preset_module_source())
        extensions.append(Extension("logharbor._native.nginx_parsers", [str(nginx_copy)],
                                    extra_compile_args=["-Wno-array-bounds"]))
        # the agent's NGINX chunk path, in C (formats/nginx_chunk.py uses it only at this digest)
        encode_c = OUT / "nginx_encode.c"
        digest = hashlib.sha256(encode_c.read_bytes()).hexdigest()
        extensions.append(Extension("logharbor._native.nginx_encode", [str(encode_c)],
                                    define_macros=[("SOURCE_SHA256", f'"{digest}"')]))
        directives = {"language_level": 3, "annotation_typing": False, "binding": True,
                      "embedsignature": False}
        try:
            modules = cythonize(extensions, compiler_directives=directives, quiet=True,
                                nthreads=0, build_dir=str(work / "c")) + c_extensions
            dist = Distribution({"ext_modules": modules, "script_name": "build_native.py",
                                 "script_args": ["-q", "build_ext", "--build-lib", str(work / "lib"),
                                                 "--build-temp", str(work / "tmp")]})
            dist.parse_command_line()
            dist.run_commands()
        except (Exception, SystemExit) as exc:  # a compiler missing or failing: the Python path stays
            print(f"build_native: not built, the compile failed: {exc}", file=sys.stderr)
            return 1
        built = sorted((work / "lib" / "logharbor" / "_native").glob("*.so"))
        if len(built) != len(extensions) + len(c_extensions):
            print(f"build_native: not built, {len(built)} of {len(extensions) + len(c_extensions)} "
                  "modules compiled",
                  file=sys.stderr)
            return 1
        for old in OUT.glob("*.so"):
            old.unlink()
        for path in built:
            shutil.copy2(path, OUT / path.name)
    import Cython

    build = {"cython": Cython.__version__, "sources": digests}
    (OUT / "BUILD.json").write_text(json.dumps(build, indent=1) + "\n")
    print(f"build_native: built {len(built)} modules into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
