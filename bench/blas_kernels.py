"""Which OpenBLAS kernels a benchmark runs, chosen explicitly and recorded.

Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it picks its kernels by the CPU
(Haswell, SkylakeX, Cooperlake, Zen...) unless OPENBLAS_CORETYPE names others. A shell that
pins OPENBLAS_CORETYPE (this workplace's sets Haswell) makes every measurement under it run
those kernels whatever the CPU: on an AVX-512 machine that is the AVX2 code path, about 20%
slower for our small gemms. A benchmark states which it ran: `--coretype native` (the
default of our drivers) removes the pin, so OpenBLAS picks what it would on a user's machine;
`--coretype NAME` pins NAME. Ours, the PyTorch peer (Debian's torch calls the same OpenBLAS)
and the gemm limit all run under the same choice, so their ratios compare like with like.

choose() must run before anything loads OpenBLAS in this process (torch, numpy)."""
import os


def add_argument(ap):
    ap.add_argument("--coretype", default="native",
                    help="OpenBLAS kernels: 'native' (OPENBLAS_CORETYPE removed, OpenBLAS detects the CPU; "
                         "the default) or a core name to pin, e.g. Haswell, SkylakeX")


def choose(coretype):
    """Sets this process's (and so its children's) OPENBLAS_CORETYPE; returns the core name
    OpenBLAS reports under it."""
    if coretype == "native":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    else:
        os.environ["OPENBLAS_CORETYPE"] = coretype
    return corename()


def corename():
    """The kernels OpenBLAS picks under this process's environment (it reads OPENBLAS_CORETYPE
    when the library loads, so the answer is asked of a fresh process)."""
    import subprocess, sys
    probe = ("import ctypes; l = ctypes.CDLL('libopenblas.so.0'); "
             "l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ)
    return p.stdout.strip() if p.returncode == 0 else "unknown (libopenblas.so.0 not loadable)"
