"""The embedding-only workload through FAISS IndexFlatIP, as one process.

Usage: python3 faiss_flatip.py TRAITS.f32 N D K OUT.i64

TRAITS.f32 holds N unit vectors of width D (float32, row-major), exactly
what batchmatch scores. The script finds each vector's K nearest others by
inner product (searching K+1 and dropping the query itself), and writes the
neighbour row numbers as int64 (N*K). It prints the BLAS library the process
loaded, read from /proc/self/maps, and its own stage times.
"""
import sys
import time

t0 = time.perf_counter()
import numpy as np
import faiss

path, n, d, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = np.fromfile(path, dtype=np.float32).reshape(n, d)
t1 = time.perf_counter()
index = faiss.IndexFlatIP(d)
index.add(x)
_, nn = index.search(x, k + 1)
t2 = time.perf_counter()
# drop the query itself (stable: the others keep their order)
self_hit = nn == np.arange(n)[:, None]
order = np.argsort(self_hit, axis=1, kind="stable")
res = np.take_along_axis(nn, order, axis=1)[:, :k].astype(np.int64)
res.tofile(out)
t3 = time.perf_counter()

blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower()})
print("blas=" + ",".join(blas))
try:  # OpenBLAS names the kernels it chose (OPENBLAS_CORETYPE or its own detection)
    import ctypes
    lib = ctypes.CDLL(blas[0])
    lib.openblas_get_config.restype = ctypes.c_char_p
    lib.openblas_get_corename.restype = ctypes.c_char_p
    print("openblas_core=%s config=%s" % (lib.openblas_get_corename().decode(), lib.openblas_get_config().decode()))
except Exception as e:  # not OpenBLAS, or too old to say
    print("openblas_core=unknown (%s)" % e)
print("threads=%d" % faiss.omp_get_max_threads())
print("load_s=%.3f search_s=%.3f write_s=%.3f" % (t1 - t0, t2 - t1, t3 - t2))
