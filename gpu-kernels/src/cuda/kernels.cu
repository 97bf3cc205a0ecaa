// Kernels of the CUDA backend, compiled at run time with NVRTC (no CUDA headers needed).
//
// Conventions: the residual stream, GEMM outputs, q, norm weights and biases are f32. "T" is the
// storage type of weights, KV cache and GEMM inputs: float (suffix _f32) or bf16 kept as raw
// unsigned short bits (suffix _bf16), so no cuda_bf16.h is needed.
// Packed (ragged) batches: token t belongs to a sequence; tok_base[t] is the first KV slot of its
// sequence in the per-chunk cache, tok_pos[t] its position in its own part (absolute position is
// prefix_len + tok_pos[t]); its K/V go to slot tok_base[t] + tok_pos[t].

typedef unsigned short bf16_t;
#define INFINITY __int_as_float(0x7f800000)

__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16_t* p, long long i) {
    return __uint_as_float(((unsigned int)p[i]) << 16);
}
__device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16_t* p, long long i, float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) {
        p[i] = (bf16_t)((u >> 16) | 0x40u);  // quiet NaN
        return;
    }
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    p[i] = (bf16_t)(u >> 16);
}

// Block-wide sum / max over blockDim.x threads (a multiple of 32, at most 1024). `sh` holds 32 floats.
__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : 0.0f;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    float r = sh[0];
    __syncthreads();
    return r;
}

__device__ float block_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : -INFINITY;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    float r = sh[0];
    __syncthreads();
    return r;
}

// ---------------------------------------------------------------- embedding gather
// x[t, :] = table[ids[t], :]. grid = n tokens, block = 256.
template <typename T>
__device__ void embed_impl(const T* table, const unsigned int* ids, float* x, int H) {
    long long t = blockIdx.x;
    long long row = (long long)ids[t] * H;
    for (int i = threadIdx.x; i < H; i += blockDim.x) x[t * H + i] = ld(table, row + i);
}
extern "C" __global__ void embed_f32(const float* table, const unsigned int* ids, float* x, int H) {
    embed_impl(table, ids, x, H);
}
extern "C" __global__ void embed_bf16(const bf16_t* table, const unsigned int* ids, float* x, int H) {
    embed_impl(table, ids, x, H);
}

// ---------------------------------------------------------------- RMSNorm
// out[r, :] = x[src_row, :] / sqrt(mean(x^2) + eps) * w, src_row = rows ? rows[r] : r.
// grid = number of output rows, block = 256.
template <typename T>
__device__ void rmsnorm_impl(const float* x, const float* w, T* out, const int* rows, int dim, float eps) {
    __shared__ float sh[32];
    long long r = blockIdx.x;
    long long src = rows ? (long long)rows[r] : r;
    const float* xr = x + src * dim;
    float s = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    s = block_sum(s, sh);
    float inv = rsqrtf(s / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) st(out, r * dim + i, xr[i] * inv * w[i]);
}
extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float* out, const int* rows, int dim, float eps) {
    rmsnorm_impl(x, w, out, rows, dim, eps);
}
extern "C" __global__ void rmsnorm_bf16(const float* x, const float* w, bf16_t* out, const int* rows, int dim, float eps) {
    rmsnorm_impl(x, w, out, rows, dim, eps);
}

// ---------------------------------------------------------------- q/k/v post-processing
// qkv: [n, nh*hd + 2*nkv*hd] f32 (GEMM output). Per head: + bias, per-head RMSNorm (q/k, when
// qn != 0), RoPE (q/k), then q -> q_out [n, nh*hd] f32, k/v -> cache slot tok_base[t] + tok_pos[t].
// grid = (n, nh + 2*nkv), block = 64; dynamic shared memory = hd floats.
template <typename T>
__device__ void qkv_post_impl(const float* qkv, const float* bias, const float* qn, const float* kn,
                              const int* tok_base, const int* tok_pos, int prefix_len, float* q_out,
                              T* q_t, T* kc, T* vc, int nh, int nkv, int hd, float eps, float theta,
                              int interleaved) {
    extern __shared__ float hv[];
    __shared__ float sh[32];
    long long t = blockIdx.x;
    int head = blockIdx.y;
    int width = (nh + 2 * nkv) * hd;
    int col0 = head * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float v = qkv[t * width + col0 + i];
        if (bias) v += bias[col0 + i];
        hv[i] = v;
    }
    __syncthreads();
    bool is_q = head < nh;
    bool is_k = !is_q && head < nh + nkv;
    long long slot = (long long)tok_base[t] + tok_pos[t];
    int kvd = nkv * hd;
    if (!is_q && !is_k) {
        int vh = head - nh - nkv;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) st(vc, slot * kvd + vh * hd + i, hv[i]);
        return;
    }
    const float* nw = is_q ? qn : kn;
    if (nw) {
        float s = 0.0f;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) s += hv[i] * hv[i];
        s = block_sum(s, sh);
        float inv = rsqrtf(s / (float)hd + eps);
        for (int i = threadIdx.x; i < hd; i += blockDim.x) hv[i] = hv[i] * inv * nw[i];
        __syncthreads();
    }
    int half = hd / 2;
    float pos = (float)(prefix_len + tok_pos[t]);
    float outv[16];  // pairs handled by this thread: at most hd/2/blockDim.x <= 16 (hd <= 2048)
    int cnt = 0;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float f = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)hd));
        float s, c;
        sincosf(pos * f, &s, &c);
        int i0 = interleaved ? 2 * i : i;
        int i1 = interleaved ? 2 * i + 1 : i + half;
        float x0 = hv[i0], x1 = hv[i1];
        outv[cnt++] = x0 * c - x1 * s;
        outv[cnt++] = x1 * c + x0 * s;
    }
    __syncthreads();
    cnt = 0;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        int i0 = interleaved ? 2 * i : i;
        int i1 = interleaved ? 2 * i + 1 : i + half;
        hv[i0] = outv[cnt++];
        hv[i1] = outv[cnt++];
    }
    __syncthreads();
    if (is_q) {
        for (int i = threadIdx.x; i < hd; i += blockDim.x) {
            q_out[t * nh * hd + head * hd + i] = hv[i];
            if (q_t) st(q_t, t * nh * hd + head * hd + i, hv[i]);
        }
    } else {
        int kh = head - nh;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) st(kc, slot * kvd + kh * hd + i, hv[i]);
    }
}
extern "C" __global__ void qkv_post_f32(const float* qkv, const float* bias, const float* qn, const float* kn,
                                        const int* tok_base, const int* tok_pos, int prefix_len, float* q_out, float* q_t,
                                        float* kc, float* vc, int nh, int nkv, int hd, float eps, float theta,
                                        int interleaved) {
    qkv_post_impl(qkv, bias, qn, kn, tok_base, tok_pos, prefix_len, q_out, q_t, kc, vc, nh, nkv, hd, eps, theta,
                  interleaved);
}
extern "C" __global__ void qkv_post_bf16(const float* qkv, const float* bias, const float* qn, const float* kn,
                                         const int* tok_base, const int* tok_pos, int prefix_len, float* q_out, bf16_t* q_t,
                                         bf16_t* kc, bf16_t* vc, int nh, int nkv, int hd, float eps, float theta,
                                         int interleaved) {
    qkv_post_impl(qkv, bias, qn, kn, tok_base, tok_pos, prefix_len, q_out, q_t, kc, vc, nh, nkv, hd, eps, theta,
                  interleaved);
}

// ---------------------------------------------------------------- attention (causal, GQA)
// One block per (token, q head), ATT_THREADS threads. Keys: prefix cache [0, P) (shared by the
// whole batch), then the token's own cache slots tok_base[t] + [0, tok_pos[t]]. Online softmax
// over tiles of ATT_THREADS keys (one key per thread for the scores, one output dim per thread for
// the values). out: [n, nh*hd] in T. hd <= 4 * ATT_THREADS. Dynamic shared memory: hd floats.
// Cascade mode (pref_o != 0): the prefix part was computed by GEMMs (prefix_softmax): pref_ml
// [nh, n, 2] holds its (max, sum of exp) and pref_o [nh, n, hd] its unnormalised output; the
// kernel starts from that state and only visits the own keys (log-sum-exp merge).
#define ATT_THREADS 128
template <typename T>
__device__ void attention_impl(const float* q, const T* pk, const T* pv, int P, const T* kc, const T* vc,
                               const int* tok_base, const int* tok_pos, T* out, int nh, int nkv, int hd,
                               float scale, const float* pref_o, const float* pref_ml, int n_tok) {
    extern __shared__ float qs[];
    __shared__ float sh[32];
    __shared__ float ps[ATT_THREADS];
    long long t = blockIdx.x;
    int head = blockIdx.y;
    int kvh = head / (nh / nkv);
    int kvd = nkv * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) qs[i] = q[t * nh * hd + head * hd + i];
    __syncthreads();
    long long base = tok_base[t];
    int total = P + tok_pos[t] + 1;
    float m = -INFINITY, l = 0.0f;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int first = 0;
    if (pref_o && P > 0) {
        long long row = (long long)head * n_tok + t;
        m = pref_ml[row * 2];
        l = pref_ml[row * 2 + 1];
        for (int r = 0; r < 4; ++r) {
            int dd = threadIdx.x + r * ATT_THREADS;
            if (dd < hd) acc[r] = pref_o[row * hd + dd];
        }
        first = P;
    }
    for (int s0 = first; s0 < total; s0 += ATT_THREADS) {
        int j = s0 + threadIdx.x;
        float sc = -INFINITY;
        if (j < total) {
            const T* kr = (j < P) ? (pk + (long long)j * kvd + kvh * hd)
                                  : (kc + (base + (j - P)) * kvd + kvh * hd);
            float d = 0.0f;
            for (int i = 0; i < hd; ++i) d += qs[i] * ld(kr, i);
            sc = d * scale;
        }
        float tmax = block_max(sc, sh);
        float nm = fmaxf(m, tmax);
        float p = (j < total) ? expf(sc - nm) : 0.0f;
        ps[threadIdx.x] = p;
        float tsum = block_sum(p, sh);  // also syncs ps
        float corr = expf(m - nm);  // m = -inf at start -> 0
        l = l * corr + tsum;
        int nt = min(ATT_THREADS, total - s0);
        for (int r = 0; r < 4; ++r) {
            int dd = threadIdx.x + r * ATT_THREADS;
            if (dd >= hd) break;
            float a = acc[r] * corr;
            for (int jj = 0; jj < nt; ++jj) {
                int k = s0 + jj;
                const T* vr = (k < P) ? (pv + (long long)k * kvd + kvh * hd)
                                      : (vc + (base + (k - P)) * kvd + kvh * hd);
                a += ps[jj] * ld(vr, dd);
            }
            acc[r] = a;
        }
        m = nm;
        __syncthreads();
    }
    float inv = 1.0f / l;
    for (int r = 0; r < 4; ++r) {
        int dd = threadIdx.x + r * ATT_THREADS;
        if (dd >= hd) break;
        st(out, t * nh * hd + head * hd + dd, acc[r] * inv);
    }
}
extern "C" __global__ void attention_f32(const float* q, const float* pk, const float* pv, int P, const float* kc,
                                         const float* vc, const int* tok_base, const int* tok_pos, float* out,
                                         int nh, int nkv, int hd, float scale, const float* pref_o,
                                         const float* pref_ml, int n_tok) {
    attention_impl(q, pk, pv, P, kc, vc, tok_base, tok_pos, out, nh, nkv, hd, scale, pref_o, pref_ml, n_tok);
}
extern "C" __global__ void attention_bf16(const float* q, const bf16_t* pk, const bf16_t* pv, int P, const bf16_t* kc,
                                          const bf16_t* vc, const int* tok_base, const int* tok_pos, bf16_t* out,
                                          int nh, int nkv, int hd, float scale, const float* pref_o,
                                         const float* pref_ml, int n_tok) {
    attention_impl(q, pk, pv, P, kc, vc, tok_base, tok_pos, out, nh, nkv, hd, scale, pref_o, pref_ml, n_tok);
}

// ---------------------------------------------------------------- cascade prefix attention
// scores: [rows, P] f32 (already scaled; rows = nh * n, row = head * n + t, from a batched GEMM of
// q against the shared prefix keys). Writes probs = exp(score - max) in T (for the P.V GEMM) and
// ml[row] = (max, sum of exp). grid = rows, block = 256.
template <typename T>
__device__ void prefix_softmax_impl(const float* scores, T* probs, float* ml, int P) {
    __shared__ float sh[32];
    long long row = blockIdx.x;
    const float* sr = scores + row * P;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < P; i += blockDim.x) m = fmaxf(m, sr[i]);
    m = block_max(m, sh);
    float l = 0.0f;
    for (int i = threadIdx.x; i < P; i += blockDim.x) {
        float p = expf(sr[i] - m);
        st(probs, row * P + i, p);
        l += ld(probs, row * P + i);  // the rounded value, as the GEMM will see it
    }
    l = block_sum(l, sh);
    if (threadIdx.x == 0) {
        ml[row * 2] = m;
        ml[row * 2 + 1] = l;
    }
}
extern "C" __global__ void prefix_softmax_f32(const float* scores, float* probs, float* ml, int P) {
    prefix_softmax_impl(scores, probs, ml, P);
}
extern "C" __global__ void prefix_softmax_bf16(const float* scores, bf16_t* probs, float* ml, int P) {
    prefix_softmax_impl(scores, probs, ml, P);
}

// ---------------------------------------------------------------- SwiGLU
// gu: [n, 2I] f32 (gate then up, one fused GEMM); out[t, i] = silu(gate) * up in T.
template <typename T>
__device__ void swiglu_impl(const float* gu, T* out, long long n, int I) {
    long long total = n * I;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        long long t = e / I;
        int i = (int)(e - t * I);
        float g = gu[t * 2 * I + i];
        float u = gu[t * 2 * I + I + i];
        st(out, e, g / (1.0f + expf(-g)) * u);
    }
}
extern "C" __global__ void swiglu_f32(const float* gu, float* out, long long n, int I) { swiglu_impl(gu, out, n, I); }
extern "C" __global__ void swiglu_bf16(const float* gu, bf16_t* out, long long n, int I) { swiglu_impl(gu, out, n, I); }

// ---------------------------------------------------------------- residual add
// x += y (n elements). The forward pass fuses residual adds into the GEMMs (beta = 1); this kernel
// is kept for callers that need it separately.
extern "C" __global__ void residual_add(float* x, const float* y, long long n) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x)
        x[e] += y[e];
}

// ---------------------------------------------------------------- sampling
// Must match src/sampling.rs exactly in algorithm and in the order of every float sum (the CPU
// sampler replays block_sum, the threshold search and the per-thread buckets below). One block of
// SAMPLE_THREADS = 1024 threads per row.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ __forceinline__ float uniform01(unsigned long long seed, unsigned long long stream, unsigned long long step) {
    unsigned long long h = mix64(mix64(mix64(seed) ^ stream) ^ (step * 0x9E3779B97F4A7C15ull));
    return (float)(h >> 40) / 16777216.0f;
}

// Block argmax, lowest index on ties, NaN never wins. Returns (value, index) in all threads.
__device__ void block_argmax(float v, int idx, float* shv, int* shi, float* outv, int* outi) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) { v = ov; idx = oi; }
    }
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) { shv[w] = v; shi[w] = idx; }
    __syncthreads();
    if (w == 0) {
        int nw = (blockDim.x + 31) >> 5;
        v = (l < nw) ? shv[l] : -INFINITY;
        idx = (l < nw) ? shi[l] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, v, o);
            int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (ov > v || (ov == v && oi < idx)) { v = ov; idx = oi; }
        }
        if (l == 0) { shv[0] = v; shi[0] = idx; }
    }
    __syncthreads();
    *outv = shv[0];
    *outi = shi[0];
    __syncthreads();
}

// logits: [rows, V] f32 (overwritten with the softmax weights when sampling). greedy != 0: argmax.
// streams[r]: the random stream of row r. out[r]: the chosen token.
extern "C" __global__ void __launch_bounds__(1024) sample_rows(float* logits, int V, const unsigned long long* streams,
                                       unsigned long long seed, unsigned long long step, int greedy,
                                       float temperature, float top_p, unsigned int* out) {
    __shared__ float sh[32];
    __shared__ float shv[32];
    __shared__ int shi[32];
    __shared__ float scan[1024];
    float* row = logits + (long long)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = row[i];
        if (!isnan(x) && (x > bv || bi == 0x7fffffff)) { bv = x; bi = i; }
    }
    float mv;
    int mi;
    block_argmax(bv, bi, shv, shi, &mv, &mi);
    if (mi == 0x7fffffff) mi = 0;
    if (greedy || !isfinite(mv)) {
        if (threadIdx.x == 0) out[blockIdx.x] = (unsigned int)mi;
        return;
    }
    // A true division, as in src/sampling.rs: `* (1 / temperature)` overflows to inf for a tiny
    // temperature and the top weight would be 0 * inf = NaN. Here the argument is in [-inf, 0].
    float z = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = row[i];
        float w = isnan(x) ? 0.0f : expf((x - mv) / temperature);
        row[i] = w;
        z += w;
    }
    z = block_sum(z, sh);
    float target = top_p * z;
    // Largest threshold t (as bits; positive floats order like their bits) with mass(w >= t) >= target.
    unsigned int lo = 0u, hi = __float_as_uint(1.0f) + 1u;
    while (hi - lo > 1u) {
        unsigned int mid = lo + (hi - lo) / 2u;
        float t = __uint_as_float(mid);
        float s = 0.0f;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float w = row[i];
            if (w >= t) s += w;
        }
        s = block_sum(s, sh);
        if (s >= target) lo = mid; else hi = mid;
    }
    float t = __uint_as_float(lo);
    // Contiguous chunks per thread, scanned in index order.
    int chunk = (V + blockDim.x - 1) / blockDim.x;
    int b0 = threadIdx.x * chunk;
    int b1 = min(V, b0 + chunk);
    float local = 0.0f;
    int last = -1;
    for (int i = b0; i < b1; ++i) {
        float w = row[i];
        if (w >= t) { local += w; last = i; }
    }
    scan[threadIdx.x] = local;
    __syncthreads();
    if (threadIdx.x == 0) {
        float acc = 0.0f;
        for (int k = 0; k < (int)blockDim.x; ++k) { float v = scan[k]; scan[k] = acc; acc += v; }
        sh[0] = acc;
    }
    __syncthreads();
    float total = sh[0];
    float r = uniform01(seed, streams[blockIdx.x], step) * total;
    // Fallback: the last nucleus index overall.
    float lv;
    int li;
    block_argmax(last >= 0 ? (float)last : -INFINITY, last >= 0 ? last : 0x7fffffff, shv, shi, &lv, &li);
    __shared__ int chosen;
    if (threadIdx.x == 0) chosen = (li == 0x7fffffff) ? mi : li;
    __syncthreads();
    // The bucket of this thread is [acc, acc + local); the buckets tile [0, total) exactly, since
    // scan[k + 1] was computed as the same float sum scan[k] + local. Inside the bucket, the
    // running sum restarts from 0 in the order `local` was summed, and is compared as acc + run:
    // at the bucket's last nucleus index run == local bit for bit, so acc + run > r there and a
    // token of this bucket is always chosen. (Adding the weights one by one onto acc instead
    // rounds differently and can end below acc + local, missing r.)
    float acc = scan[threadIdx.x];
    if (acc <= r && r < acc + local) {
        float run = 0.0f;
        for (int i = b0; i < b1; ++i) {
            float w = row[i];
            if (w >= t) {
                run += w;
                if (acc + run > r) { chosen = i; break; }
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = (unsigned int)chosen;
}
