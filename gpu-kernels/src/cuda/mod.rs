//! The CUDA backend (feature `cuda`): cudarc with dynamic loading, kernels compiled at run time by
//! NVRTC ([`crate::kernels`]), GEMMs through cuBLAS (`cublasGemmEx`, bf16 or f32 inputs, f32
//! output and accumulation).
//!
//! Data layout: the residual stream and every GEMM output are f32; weights, KV cache and GEMM
//! inputs are in the storage type ([`GpuDtype`]). q/k/v, gate/up are fused into one GEMM each; the
//! residual adds are fused into the o_proj and down_proj GEMMs (`beta = 1`).
//!
//! Batches are packed: each token carries the first KV slot of its sequence and its position in
//! the sequence's own part. A shared prefix has its own KV cache, prefilled once; every sequence
//! attends to it, then to its own slots. Sequences are processed in chunks that fit the KV budget;
//! a forward pass holds at most `max_batch_tokens` tokens and `max_logit_rows` logit rows.

use std::path::Path;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::cublas::sys as bsys;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr};

use crate::backend::{Backend, GenerateConfig, check_batch};
use crate::config::{ModelConfig, RopeStyle};
use crate::error::{Error, Result};
use crate::model::{ModelWeights, TensorKind};
use crate::weights::TensorStore;
use crate::{CudaOptions, GpuDtype};

fn cuda_err(e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{e:?}"))
}

/// Checks that the CUDA driver, NVRTC and cuBLAS libraries can be loaded and a device exists,
/// without panicking (cudarc panics when a library is missing).
pub fn cuda_available() -> Result<()> {
    // SAFETY: these only try to dlopen the libraries.
    unsafe {
        if !cudarc::driver::sys::is_culib_present() {
            return Err(Error::CudaUnavailable(
                "no CUDA driver (libcuda) found".into(),
            ));
        }
        if !cudarc::nvrtc::sys::is_culib_present() {
            return Err(Error::CudaUnavailable("libnvrtc not found".into()));
        }
        if !cudarc::cublas::sys::is_culib_present() {
            return Err(Error::CudaUnavailable("libcublas not found".into()));
        }
    }
    let n = CudaContext::device_count()
        .map_err(|e| Error::CudaUnavailable(format!("cuInit failed: {e:?}")))?;
    if n <= 0 {
        return Err(Error::CudaUnavailable("no CUDA device".into()));
    }
    Ok(())
}

/// A device buffer of raw bytes (the element type is implied by its use).
#[derive(Debug)]
struct Buf {
    mem: CudaSlice<u8>,
}

impl Buf {
    fn len(&self) -> usize {
        self.mem.len()
    }
}

/// Raw device pointer of a buffer. Event tracking is disabled (one stream), so the guard is inert.
fn dptr(b: &Buf, stream: &CudaStream) -> u64 {
    let (p, _g) = b.mem.device_ptr(stream);
    p
}

fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: plain-old-data slices (f32, u16, u32, i32, u64) viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// One kernel argument.
#[derive(Clone, Copy)]
enum A {
    P(u64),
    I(i32),
    L(i64),
    U(u64),
    F(f32),
}

struct Kernels {
    _module: Arc<CudaModule>,
    embed: CudaFunction,
    rmsnorm: CudaFunction,
    qkv_post: CudaFunction,
    attention: CudaFunction,
    swiglu: CudaFunction,
    prefix_softmax: CudaFunction,
    sample: CudaFunction,
}

/// Scratch of cascade prefix attention, for up to `n` tokens and a prefix of up to `p` tokens.
struct Cascade {
    n: usize,
    p: usize,
    q_t: Buf,
    scores: Buf,
    probs: Buf,
    o: Buf,
    ml: Buf,
}

struct GpuLayer {
    in_norm: Buf,
    qkv_w: Buf,
    qkv_b: Option<Buf>,
    q_norm: Option<Buf>,
    k_norm: Option<Buf>,
    o_w: Buf,
    post_norm: Buf,
    gu_w: Buf,
    down_w: Buf,
}

struct GpuWeights {
    embed: Buf,
    layers: Vec<GpuLayer>,
    final_norm: Buf,
    lm_head: Option<Buf>,
}

/// Per-layer K and V caches, `[slots, kv_dim]` each, in the storage type.
struct KvSet {
    k: Vec<Buf>,
    v: Vec<Buf>,
    slots: usize,
}

/// Activation buffers for up to `n` tokens and `r` logit rows.
struct Scratch {
    n: usize,
    r: usize,
    x: Buf,
    h: Buf,
    qkv: Buf,
    q: Buf,
    attn: Buf,
    gu: Buf,
    act: Buf,
    hl: Buf,
    logits: Buf,
    ids: Buf,
    base: Buf,
    pos: Buf,
    rows: Buf,
    streams: Buf,
    out: Buf,
}

/// One token of a packed batch.
#[derive(Debug, Clone, Copy)]
struct Tok {
    id: u32,
    base: i32,
    pos: i32,
    /// The logit row index of this token when it is the last token of its sequence.
    last_of: Option<usize>,
}

/// The CUDA backend. Create it with [`CudaBackend::load`]; see the module docs.
pub struct CudaBackend {
    cfg: ModelConfig,
    opts: CudaOptions,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    k: Kernels,
    w: GpuWeights,
    s: Scratch,
    casc: Option<Cascade>,
    esize: usize,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("cfg", &self.cfg)
            .field("opts", &self.opts)
            .finish()
    }
}

// SAFETY: the backend owns its context, stream and buffers; it is used by one thread at a time
// (`&mut self` on every call) and binds the context to the calling thread before work.
unsafe impl Send for CudaBackend {}

impl CudaBackend {
    /// Loads a model directory onto the GPU.
    pub fn load(dir: &Path, opts: CudaOptions) -> Result<Self> {
        let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
        let store = TensorStore::open_dir(dir)?;
        Self::from_store(cfg, &store, opts)
    }

    /// Builds the backend from a config and opened tensors.
    pub fn from_store(cfg: ModelConfig, store: &TensorStore, opts: CudaOptions) -> Result<Self> {
        cuda_available()?;
        if cfg.head_dim > 512 {
            return Err(Error::field(
                "head_dim",
                "the CUDA attention kernel supports <= 512",
            ));
        }
        if opts.max_batch_tokens == 0 || opts.max_logit_rows == 0 {
            return Err(Error::input(
                "max_batch_tokens and max_logit_rows must be positive",
            ));
        }
        let ctx = CudaContext::new(opts.device).map_err(cuda_err)?;
        // One stream, so cudarc's cross-stream event tracking is not needed.
        // SAFETY: all work goes to `stream`, buffers outlive their uses (we synchronise before
        // returning data or dropping per-call buffers).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(cuda_err)?;
        let (major, _) = ctx.compute_capability().map_err(cuda_err)?;
        let arch = if major >= 9 {
            "compute_90"
        } else {
            "compute_80"
        };
        let ptx = crate::kernels::compile_kernels(arch)?;
        let module = ctx.load_module(ptx).map_err(cuda_err)?;
        let sfx = match opts.dtype {
            GpuDtype::Bf16 => "bf16",
            GpuDtype::F32 => "f32",
        };
        let f = |n: &str| module.load_function(n).map_err(cuda_err);
        let k = Kernels {
            embed: f(&format!("embed_{sfx}"))?,
            rmsnorm: f(&format!("rmsnorm_{sfx}"))?,
            qkv_post: f(&format!("qkv_post_{sfx}"))?,
            attention: f(&format!("attention_{sfx}"))?,
            swiglu: f(&format!("swiglu_{sfx}"))?,
            prefix_softmax: f(&format!("prefix_softmax_{sfx}"))?,
            sample: f("sample_rows")?,
            _module: module,
        };
        let esize = match opts.dtype {
            GpuDtype::Bf16 => 2,
            GpuDtype::F32 => 4,
        };
        // Host copies, converted to the storage type (matrices) or f32 (vectors).
        let host = ModelWeights::load(&cfg, store, |_, kind, raw| {
            Ok(match (kind, opts.dtype) {
                (TensorKind::Matrix, GpuDtype::Bf16) => bytes_of(&raw.to_bf16_bits()).to_vec(),
                _ => bytes_of(&raw.to_f32()).to_vec(),
            })
        })?;
        let up = |b: &[u8]| -> Result<Buf> {
            Ok(Buf {
                mem: stream.clone_htod(b).map_err(cuda_err)?,
            })
        };
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for lw in &host.layers {
            let qkv_w = [&lw.q_proj[..], &lw.k_proj[..], &lw.v_proj[..]].concat();
            let gu_w = [&lw.gate_proj[..], &lw.up_proj[..]].concat();
            layers.push(GpuLayer {
                in_norm: up(&lw.input_norm)?,
                qkv_w: up(&qkv_w)?,
                qkv_b: match &lw.qkv_bias {
                    Some([a, b, c]) => Some(up(&[&a[..], &b[..], &c[..]].concat())?),
                    None => None,
                },
                q_norm: lw.qk_norm.as_ref().map(|[q, _]| up(q)).transpose()?,
                k_norm: lw.qk_norm.as_ref().map(|[_, k]| up(k)).transpose()?,
                o_w: up(&lw.o_proj)?,
                post_norm: up(&lw.post_norm)?,
                gu_w: up(&gu_w)?,
                down_w: up(&lw.down_proj)?,
            });
        }
        let w = GpuWeights {
            embed: up(&host.embed)?,
            layers,
            final_norm: up(&host.final_norm)?,
            lm_head: host.lm_head.as_ref().map(|x| up(x)).transpose()?,
        };
        drop(host);
        let s = Self::alloc_scratch(
            &stream,
            &cfg,
            esize,
            opts.max_batch_tokens,
            opts.max_logit_rows,
        )?;
        Ok(CudaBackend {
            cfg,
            opts,
            ctx,
            stream,
            blas,
            k,
            w,
            s,
            casc: None,
            esize,
        })
    }

    fn alloc(stream: &Arc<CudaStream>, bytes: usize) -> Result<Buf> {
        Ok(Buf {
            mem: stream.alloc_zeros::<u8>(bytes.max(16)).map_err(cuda_err)?,
        })
    }

    fn alloc_scratch(
        stream: &Arc<CudaStream>,
        cfg: &ModelConfig,
        es: usize,
        n: usize,
        r: usize,
    ) -> Result<Scratch> {
        let (h, qd, kvd, i, v) = (
            cfg.hidden_size,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.intermediate_size,
            cfg.vocab_size,
        );
        let a = |b: usize| Self::alloc(stream, b);
        Ok(Scratch {
            n,
            r,
            x: a(n * h * 4)?,
            h: a(n * h * es)?,
            qkv: a(n * (qd + 2 * kvd) * 4)?,
            q: a(n * qd * 4)?,
            attn: a(n * qd * es)?,
            gu: a(n * 2 * i * 4)?,
            act: a(n * i * es)?,
            hl: a(r * h * es)?,
            logits: a(r * v * 4)?,
            ids: a(n * 4)?,
            base: a(n * 4)?,
            pos: a(n * 4)?,
            rows: a(r * 4)?,
            streams: a(r * 8)?,
            out: a(r * 4)?,
        })
    }

    /// Makes sure cascade scratch exists for a prefix of `plen` tokens (when enabled). On an
    /// allocation failure cascade is skipped and the fused attention kernel does the prefix.
    fn ensure_cascade(&mut self, plen: usize) {
        if !self.opts.cascade_prefix || plen == 0 {
            return;
        }
        if self.casc.as_ref().is_some_and(|c| c.p >= plen) {
            return;
        }
        self.casc = None;
        let (n, nh, hd, es) = (self.s.n, self.cfg.num_heads, self.cfg.head_dim, self.esize);
        let a = |b: usize| Self::alloc(&self.stream, b);
        let c = (|| -> Result<Cascade> {
            Ok(Cascade {
                n,
                p: plen,
                q_t: a(n * nh * hd * es)?,
                scores: a(nh * n * plen * 4)?,
                probs: a(nh * n * plen * es)?,
                o: a(nh * n * hd * 4)?,
                ml: a(nh * n * 2 * 4)?,
            })
        })();
        self.casc = c.ok();
    }

    /// Strided-batched `C_j = op(A_j) B_j` (column-major, cuBLAS conventions), f32 output.
    #[allow(clippy::too_many_arguments)]
    fn gemm_batched(
        &self,
        trans_a: bool,
        (m, n, k): (usize, usize, usize),
        alpha: f32,
        (a, lda, sa): (u64, usize, usize),
        (b, ldb, sb): (u64, usize, usize),
        (c, ldc, sc): (u64, usize, usize),
        batch: usize,
    ) -> Result<()> {
        let beta = 0.0f32;
        let ab = match self.opts.dtype {
            GpuDtype::Bf16 => bsys::cudaDataType_t::CUDA_R_16BF,
            GpuDtype::F32 => bsys::cudaDataType_t::CUDA_R_32F,
        };
        let ta = if trans_a {
            bsys::cublasOperation_t::CUBLAS_OP_T
        } else {
            bsys::cublasOperation_t::CUBLAS_OP_N
        };
        // SAFETY: pointers are device buffers covering the strided batches (see the callers).
        unsafe {
            cudarc::cublas::result::gemm_strided_batched_ex(
                *self.blas.handle(),
                ta,
                bsys::cublasOperation_t::CUBLAS_OP_N,
                m as i32,
                n as i32,
                k as i32,
                (&alpha as *const f32).cast(),
                a as *const std::ffi::c_void,
                ab,
                lda as i32,
                sa as i64,
                b as *const std::ffi::c_void,
                ab,
                ldb as i32,
                sb as i64,
                (&beta as *const f32).cast(),
                c as *mut std::ffi::c_void,
                bsys::cudaDataType_t::CUDA_R_32F,
                ldc as i32,
                sc as i64,
                batch as i32,
                bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )
        }
        .map_err(cuda_err)
    }

    /// Prefix part of attention for all `n` packed tokens by GEMMs: scores, softmax partials
    /// (`ml`), unnormalised outputs (`o`). See `Cascade` and the attention kernel.
    fn cascade_prefix(&self, c: &Cascade, pk: u64, pv: u64, plen: usize, n: usize) -> Result<()> {
        let cfg = &self.cfg;
        let (nh, nkv, hd, es) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, self.esize);
        let (qd, kvd, group) = (cfg.q_dim(), cfg.kv_dim(), nh / nkv);
        let scale = 1.0 / (hd as f32).sqrt();
        let (qt, sc, pr, o, ml) = (
            self.p(&c.q_t),
            self.p(&c.scores),
            self.p(&c.probs),
            self.p(&c.o),
            self.p(&c.ml),
        );
        for g in 0..nkv {
            let h0 = g * group;
            // scores[h][t][p] = scale * q[t, h, :] . K[p, g, :]; batch over the group's heads.
            self.gemm_batched(
                true,
                (plen, n, hd),
                scale,
                (pk + (g * hd * es) as u64, kvd, 0),
                (qt + (h0 * hd * es) as u64, qd, hd),
                (sc + (h0 * n * plen * 4) as u64, plen, n * plen),
                group,
            )?;
        }
        self.launch(
            &self.k.prefix_softmax,
            ((nh * n) as u32, 1, 1),
            256,
            0,
            &[A::P(sc), A::P(pr), A::P(ml), A::I(plen as i32)],
        )?;
        for g in 0..nkv {
            let h0 = g * group;
            // o[h][t][:] = sum_p probs[h][t][p] V[p, g, :].
            self.gemm_batched(
                false,
                (hd, n, plen),
                1.0,
                (pv + (g * hd * es) as u64, kvd, 0),
                (pr + (h0 * n * plen * es) as u64, plen, n * plen),
                (o + (h0 * n * hd * 4) as u64, hd, n * hd),
                group,
            )?;
        }
        Ok(())
    }

    fn kv_alloc(&self, slots: usize) -> Result<KvSet> {
        let bytes = slots.max(1) * self.cfg.kv_dim() * self.esize;
        let mut k = Vec::with_capacity(self.cfg.num_layers);
        let mut v = Vec::with_capacity(self.cfg.num_layers);
        for _ in 0..self.cfg.num_layers {
            k.push(Self::alloc(&self.stream, bytes)?);
            v.push(Self::alloc(&self.stream, bytes)?);
        }
        Ok(KvSet { k, v, slots })
    }

    fn p(&self, b: &Buf) -> u64 {
        dptr(b, &self.stream)
    }

    fn launch(
        &self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        args: &[A],
    ) -> Result<()> {
        let mut params: Vec<*mut std::ffi::c_void> = args
            .iter()
            .map(|a| match a {
                A::P(v) | A::U(v) => v as *const u64 as *mut std::ffi::c_void,
                A::I(v) => v as *const i32 as *mut std::ffi::c_void,
                A::L(v) => v as *const i64 as *mut std::ffi::c_void,
                A::F(v) => v as *const f32 as *mut std::ffi::c_void,
            })
            .collect();
        // SAFETY: the argument list matches the kernel signature in kernels.cu (checked by the
        // GPU tests); pointers reference live device buffers owned by `self` or the caller.
        unsafe {
            cudarc::driver::result::launch_kernel(
                f.cu_function(),
                grid,
                (block, 1, 1),
                smem,
                self.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(cuda_err)
    }

    /// `y[n, m] (f32) = x[n, k] (storage type) * w[m, k]^T (storage type) + beta * y`.
    fn gemm(&self, x: u64, w: u64, y: u64, dims: (usize, usize, usize), beta: f32) -> Result<()> {
        let (n, k, m) = dims;
        let alpha = 1.0f32;
        let ab = match self.opts.dtype {
            GpuDtype::Bf16 => bsys::cudaDataType_t::CUDA_R_16BF,
            GpuDtype::F32 => bsys::cudaDataType_t::CUDA_R_32F,
        };
        // Column-major view: Y^T[m, n] = W[m, k] (stored as k x m col-major, transposed) * X^T.
        // SAFETY: pointers are device buffers of the sizes implied by (n, k, m).
        unsafe {
            cudarc::cublas::result::gemm_ex(
                *self.blas.handle(),
                bsys::cublasOperation_t::CUBLAS_OP_T,
                bsys::cublasOperation_t::CUBLAS_OP_N,
                m as i32,
                n as i32,
                k as i32,
                (&alpha as *const f32).cast(),
                w as *const std::ffi::c_void,
                ab,
                k as i32,
                x as *const std::ffi::c_void,
                ab,
                k as i32,
                (&beta as *const f32).cast(),
                y as *mut std::ffi::c_void,
                bsys::cudaDataType_t::CUDA_R_32F,
                m as i32,
                bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )
        }
        .map_err(cuda_err)
    }

    /// One forward pass over packed tokens (at most `max_batch_tokens`, at most `max_logit_rows`
    /// of them last of their sequence). Writes K/V into `own`; logits of the last tokens go to the
    /// scratch logits buffer, row `Tok::last_of`.
    fn forward(&self, prefix: Option<&KvSet>, own: &KvSet, toks: &[Tok]) -> Result<usize> {
        let cfg = &self.cfg;
        let n = toks.len();
        debug_assert!(n <= self.s.n);
        let (h, qd, kvd, hd, i) = (
            cfg.hidden_size,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.head_dim,
            cfg.intermediate_size,
        );
        let ids: Vec<u32> = toks.iter().map(|t| t.id).collect();
        let base: Vec<i32> = toks.iter().map(|t| t.base).collect();
        let pos: Vec<i32> = toks.iter().map(|t| t.pos).collect();
        let mut rows: Vec<(usize, i32)> = toks
            .iter()
            .enumerate()
            .filter_map(|(j, t)| t.last_of.map(|r| (r, j as i32)))
            .collect();
        rows.sort_unstable();
        let rows: Vec<i32> = rows.into_iter().map(|x| x.1).collect();
        let s = &self.s;
        self.htod(&ids, &s.ids)?;
        self.htod(&base, &s.base)?;
        self.htod(&pos, &s.pos)?;
        if !rows.is_empty() {
            self.htod(&rows, &s.rows)?;
        }
        let (x, hb, qkv, q, attn, gu, act) = (
            self.p(&s.x),
            self.p(&s.h),
            self.p(&s.qkv),
            self.p(&s.q),
            self.p(&s.attn),
            self.p(&s.gu),
            self.p(&s.act),
        );
        let (pids, pbase, ppos) = (self.p(&s.ids), self.p(&s.base), self.p(&s.pos));
        let eps = cfg.rms_norm_eps;
        let n32 = n as u32;
        self.launch(
            &self.k.embed,
            (n32, 1, 1),
            256,
            0,
            &[
                A::P(self.p(&self.w.embed)),
                A::P(pids),
                A::P(x),
                A::I(h as i32),
            ],
        )?;
        let plen = prefix.map_or(0, |p| p.slots);
        let scale = 1.0 / (hd as f32).sqrt();
        for (l, lw) in self.w.layers.iter().enumerate() {
            self.launch(
                &self.k.rmsnorm,
                (n32, 1, 1),
                256,
                0,
                &[
                    A::P(x),
                    A::P(self.p(&lw.in_norm)),
                    A::P(hb),
                    A::P(0),
                    A::I(h as i32),
                    A::F(eps),
                ],
            )?;
            self.gemm(hb, self.p(&lw.qkv_w), qkv, (n, h, qd + 2 * kvd), 0.0)?;
            let opt = |b: &Option<Buf>| b.as_ref().map_or(0, |b| self.p(b));
            let casc = self
                .casc
                .as_ref()
                .filter(|c| prefix.is_some() && plen > 0 && plen <= c.p && n <= c.n);
            let heads = (cfg.num_heads + 2 * cfg.num_kv_heads) as u32;
            self.launch(
                &self.k.qkv_post,
                (n32, heads, 1),
                64,
                (hd * 4) as u32,
                &[
                    A::P(qkv),
                    A::P(opt(&lw.qkv_b)),
                    A::P(opt(&lw.q_norm)),
                    A::P(opt(&lw.k_norm)),
                    A::P(pbase),
                    A::P(ppos),
                    A::I(plen as i32),
                    A::P(q),
                    A::P(casc.map_or(0, |c| self.p(&c.q_t))),
                    A::P(self.p(&own.k[l])),
                    A::P(self.p(&own.v[l])),
                    A::I(cfg.num_heads as i32),
                    A::I(cfg.num_kv_heads as i32),
                    A::I(hd as i32),
                    A::F(eps),
                    A::F(cfg.rope_theta),
                    A::I((cfg.rope_style == RopeStyle::Interleaved) as i32),
                ],
            )?;
            let (pk, pv) = prefix.map_or((0, 0), |p| (self.p(&p.k[l]), self.p(&p.v[l])));
            if let Some(c) = casc {
                self.cascade_prefix(c, pk, pv, plen, n)?;
            }
            let (po, pml) = casc.map_or((0, 0), |c| (self.p(&c.o), self.p(&c.ml)));
            self.launch(
                &self.k.attention,
                (n32, cfg.num_heads as u32, 1),
                128,
                (hd * 4) as u32,
                &[
                    A::P(q),
                    A::P(pk),
                    A::P(pv),
                    A::I(plen as i32),
                    A::P(self.p(&own.k[l])),
                    A::P(self.p(&own.v[l])),
                    A::P(pbase),
                    A::P(ppos),
                    A::P(attn),
                    A::I(cfg.num_heads as i32),
                    A::I(cfg.num_kv_heads as i32),
                    A::I(hd as i32),
                    A::F(scale),
                    A::P(po),
                    A::P(pml),
                    A::I(n as i32),
                ],
            )?;
            self.gemm(attn, self.p(&lw.o_w), x, (n, qd, h), 1.0)?;
            self.launch(
                &self.k.rmsnorm,
                (n32, 1, 1),
                256,
                0,
                &[
                    A::P(x),
                    A::P(self.p(&lw.post_norm)),
                    A::P(hb),
                    A::P(0),
                    A::I(h as i32),
                    A::F(eps),
                ],
            )?;
            self.gemm(hb, self.p(&lw.gu_w), gu, (n, h, 2 * i), 0.0)?;
            let total = (n * i) as u64;
            let grid = total.div_ceil(256).min(65_535) as u32;
            self.launch(
                &self.k.swiglu,
                (grid, 1, 1),
                256,
                0,
                &[A::P(gu), A::P(act), A::L(n as i64), A::I(i as i32)],
            )?;
            self.gemm(act, self.p(&lw.down_w), x, (n, i, h), 1.0)?;
        }
        let r = rows.len();
        if r > 0 {
            let hl = self.p(&s.hl);
            self.launch(
                &self.k.rmsnorm,
                (r as u32, 1, 1),
                256,
                0,
                &[
                    A::P(x),
                    A::P(self.p(&self.w.final_norm)),
                    A::P(hl),
                    A::P(self.p(&s.rows)),
                    A::I(h as i32),
                    A::F(eps),
                ],
            )?;
            let out_w = self.w.lm_head.as_ref().unwrap_or(&self.w.embed);
            self.gemm(
                hl,
                self.p(out_w),
                self.p(&s.logits),
                (r, h, cfg.vocab_size),
                0.0,
            )?;
        }
        Ok(r)
    }

    fn htod<T: Copy>(&self, src: &[T], dst: &Buf) -> Result<()> {
        let b = bytes_of(src);
        if b.len() > dst.len() {
            return Err(Error::Cuda(
                "internal: upload larger than its buffer".into(),
            ));
        }
        if b.is_empty() {
            return Ok(());
        }
        // SAFETY: `dst` holds at least `b.len()` bytes; the copy is synchronous w.r.t. the host
        // slice (cuMemcpyHtoDAsync from pageable memory is staged before returning).
        unsafe {
            cudarc::driver::result::memcpy_htod_async(self.p(dst), b, self.stream.cu_stream())
        }
        .map_err(cuda_err)
    }

    fn dtoh_f32(&self, src: &Buf, count: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; count];
        let mut tmp = vec![0u8; count * 4];
        self.stream.synchronize().map_err(cuda_err)?;
        // SAFETY: `src` holds at least `count * 4` bytes; the stream is synchronised after.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                &mut tmp,
                self.p(src),
                self.stream.cu_stream(),
            )
        }
        .map_err(cuda_err)?;
        self.stream.synchronize().map_err(cuda_err)?;
        for (o, c) in out.iter_mut().zip(tmp.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(out)
    }

    fn dtoh_u32(&self, src: &Buf, count: usize) -> Result<Vec<u32>> {
        let mut tmp = vec![0u8; count * 4];
        // SAFETY: as in `dtoh_f32`.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                &mut tmp,
                self.p(src),
                self.stream.cu_stream(),
            )
        }
        .map_err(cuda_err)?;
        self.stream.synchronize().map_err(cuda_err)?;
        Ok(tmp
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Runs packed tokens through forward passes cut to the scratch limits. `on_logits(rows)` is
    /// called after each pass that produced logit rows, with the sequence index of each row.
    fn run_packed(
        &self,
        prefix: Option<&KvSet>,
        own: &KvSet,
        toks: &[(Tok, usize)],
        mut on_logits: impl FnMut(&[usize]) -> Result<()>,
    ) -> Result<()> {
        for (piece, seqs) in split_pieces(toks, self.s.n, self.s.r) {
            self.forward(prefix, own, &piece)?;
            if !seqs.is_empty() {
                on_logits(&seqs)?;
            }
        }
        Ok(())
    }

    fn prefill_prefix(&self, prefix: &[u32]) -> Result<Option<KvSet>> {
        if prefix.is_empty() {
            return Ok(None);
        }
        let kv = self.kv_alloc(prefix.len())?;
        let toks: Vec<(Tok, usize)> = prefix
            .iter()
            .enumerate()
            .map(|(j, &id)| {
                (
                    Tok {
                        id,
                        base: 0,
                        pos: j as i32,
                        last_of: None,
                    },
                    0,
                )
            })
            .collect();
        self.run_packed(None, &kv, &toks, |_| Ok(()))?;
        Ok(Some(kv))
    }

    /// Splits sequence indices into chunks whose KV (`slots[i]` each) fits the budget.
    fn chunks(&self, slots: &[usize]) -> Result<Vec<std::ops::Range<usize>>> {
        let per_slot = self.cfg.kv_bytes_per_token(self.esize);
        let budget = match self.opts.kv_budget_bytes {
            Some(b) => b,
            None => {
                let (free, _) = self.ctx.mem_get_info().map_err(cuda_err)?;
                free / 2
            }
        };
        plan_chunks(slots, per_slot, budget)
    }

    fn upload_streams(&self, streams: &[u64]) -> Result<()> {
        self.htod(streams, &self.s.streams)
    }

    fn sample(
        &self,
        rows: usize,
        streams: &[u64],
        gcfg: &GenerateConfig,
        step: usize,
    ) -> Result<Vec<u32>> {
        self.upload_streams(streams)?;
        let (greedy, temp, top_p) = match gcfg.sampling {
            crate::Sampling::Greedy => (1, 1.0, 1.0),
            crate::Sampling::TopP { temperature, top_p } => (0, temperature, top_p),
        };
        self.launch(
            &self.k.sample,
            (rows as u32, 1, 1),
            // The CPU sampler reproduces the kernel's sums for this block size.
            crate::sampling::SAMPLE_THREADS as u32,
            0,
            &[
                A::P(self.p(&self.s.logits)),
                A::I(self.cfg.vocab_size as i32),
                A::P(self.p(&self.s.streams)),
                A::U(gcfg.seed),
                A::U(step as u64),
                A::I(greedy),
                A::F(temp),
                A::F(top_p),
                A::P(self.p(&self.s.out)),
            ],
        )?;
        self.dtoh_u32(&self.s.out, rows)
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Err(Error::input("no token ids"));
        }
        let mut l = self.batch_logits(&[], &[ids.to_vec()])?;
        Ok(l.pop().expect("one row"))
    }

    fn batch_logits(&mut self, prefix: &[u32], suffixes: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        check_batch(&self.cfg, prefix, suffixes)?;
        self.ctx.bind_to_thread().map_err(cuda_err)?;
        let pkv = self.prefill_prefix(prefix)?;
        self.ensure_cascade(prefix.len());
        let slots: Vec<usize> = suffixes.iter().map(Vec::len).collect();
        let v = self.cfg.vocab_size;
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); suffixes.len()];
        for ch in self.chunks(&slots)? {
            let kv = self.kv_alloc(slots[ch.clone()].iter().sum())?;
            let toks = pack(suffixes, ch.clone(), &slots);
            self.run_packed(pkv.as_ref(), &kv, &toks, |seqs| {
                let all = self.dtoh_f32(&self.s.logits, seqs.len() * v)?;
                for (r, &sq) in seqs.iter().enumerate() {
                    out[sq] = all[r * v..(r + 1) * v].to_vec();
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    fn generate_batch(
        &mut self,
        prefix: &[u32],
        suffixes: &[Vec<u32>],
        gcfg: &GenerateConfig,
    ) -> Result<Vec<Vec<u32>>> {
        check_batch(&self.cfg, prefix, suffixes)?;
        gcfg.sampling.validate()?;
        let n = suffixes.len();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
        if n == 0 || gcfg.max_new_tokens == 0 {
            return Ok(out);
        }
        self.ctx.bind_to_thread().map_err(cuda_err)?;
        let pkv = self.prefill_prefix(prefix)?;
        self.ensure_cascade(prefix.len());
        // A sequence's own slots: its suffix plus the generated tokens that are fed back.
        let slots: Vec<usize> = suffixes
            .iter()
            .map(|s| s.len() + gcfg.max_new_tokens - 1)
            .collect();
        let stream_of = |i: usize| gcfg.stream_offset.wrapping_add(i as u64);
        for ch in self.chunks(&slots)? {
            let kv = self.kv_alloc(slots[ch.clone()].iter().sum())?;
            let bases = chunk_bases(&slots, ch.clone());
            let toks = pack(suffixes, ch.clone(), &slots);
            // Prefill: sample step 0 for each sequence as its logits appear.
            let mut last: Vec<Option<u32>> = vec![None; n];
            self.run_packed(pkv.as_ref(), &kv, &toks, |seqs| {
                let streams: Vec<u64> = seqs.iter().map(|&i| stream_of(i)).collect();
                let t = self.sample(seqs.len(), &streams, gcfg, 0)?;
                for (&i, &tok) in seqs.iter().zip(&t) {
                    if !gcfg.stop_tokens.contains(&tok) {
                        out[i].push(tok);
                        if out[i].len() < gcfg.max_new_tokens {
                            last[i] = Some(tok);
                        }
                    }
                }
                Ok(())
            })?;
            for step in 1..gcfg.max_new_tokens {
                let active: Vec<usize> = ch.clone().filter(|&i| last[i].is_some()).collect();
                if active.is_empty() {
                    break;
                }
                let toks: Vec<(Tok, usize)> = active
                    .iter()
                    .map(|&i| {
                        let tok = Tok {
                            id: last[i].expect("active"),
                            base: bases[i - ch.start] as i32,
                            pos: (suffixes[i].len() + step - 1) as i32,
                            last_of: Some(0),
                        };
                        (tok, i)
                    })
                    .collect();
                let mut next: Vec<(usize, u32)> = Vec::new();
                self.run_packed(pkv.as_ref(), &kv, &toks, |seqs| {
                    let streams: Vec<u64> = seqs.iter().map(|&i| stream_of(i)).collect();
                    let t = self.sample(seqs.len(), &streams, gcfg, step)?;
                    next.extend(seqs.iter().copied().zip(t));
                    Ok(())
                })?;
                for i in active {
                    last[i] = None;
                }
                for (i, tok) in next {
                    if !gcfg.stop_tokens.contains(&tok) {
                        out[i].push(tok);
                        if out[i].len() < gcfg.max_new_tokens {
                            last[i] = Some(tok);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// First KV slot of each sequence of a chunk (prefix sums of their slot counts).
fn chunk_bases(slots: &[usize], ch: std::ops::Range<usize>) -> Vec<usize> {
    let mut acc = 0;
    slots[ch]
        .iter()
        .map(|&s| {
            let b = acc;
            acc += s;
            b
        })
        .collect()
}

/// Packs the suffixes of a chunk as tokens `(Tok, sequence index)`, sequence after sequence.
fn pack(suffixes: &[Vec<u32>], ch: std::ops::Range<usize>, slots: &[usize]) -> Vec<(Tok, usize)> {
    let bases = chunk_bases(slots, ch.clone());
    let mut toks = Vec::new();
    for (k, i) in ch.enumerate() {
        let s = &suffixes[i];
        for (j, &id) in s.iter().enumerate() {
            toks.push((
                Tok {
                    id,
                    base: bases[k] as i32,
                    pos: j as i32,
                    last_of: (j + 1 == s.len()).then_some(0),
                },
                i,
            ));
        }
    }
    toks
}

/// Cuts packed tokens into forward passes of at most `max_tokens` tokens and `max_rows` last
/// tokens. Returns each piece (with `last_of` renumbered 0..) and the sequence of each logit row.
fn split_pieces(
    toks: &[(Tok, usize)],
    max_tokens: usize,
    max_rows: usize,
) -> Vec<(Vec<Tok>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < toks.len() {
        let mut end = start;
        let mut seqs: Vec<usize> = Vec::new();
        while end < toks.len() && end - start < max_tokens.max(1) {
            if toks[end].0.last_of.is_some() {
                if seqs.len() == max_rows.max(1) {
                    break;
                }
                seqs.push(toks[end].1);
            }
            end += 1;
        }
        let mut piece: Vec<Tok> = toks[start..end].iter().map(|x| x.0).collect();
        let mut r = 0;
        for t in piece.iter_mut() {
            if t.last_of.is_some() {
                t.last_of = Some(r);
                r += 1;
            }
        }
        out.push((piece, seqs));
        start = end;
    }
    out
}

/// Groups consecutive sequences so that each group's KV (`slots[i] * per_slot` bytes each) fits
/// `budget`.
fn plan_chunks(
    slots: &[usize],
    per_slot: usize,
    budget: usize,
) -> Result<Vec<std::ops::Range<usize>>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0usize;
    for (i, &s) in slots.iter().enumerate() {
        let b = s.saturating_mul(per_slot);
        if b > budget {
            return Err(Error::input(format!(
                "sequence {i} needs {b} bytes of KV cache, over the budget of {budget}"
            )));
        }
        if used + b > budget {
            out.push(start..i);
            start = i;
            used = 0;
        }
        used += b;
    }
    if start < slots.len() {
        out.push(start..slots.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_split_cover_every_token_once_in_order() {
        let sufs: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![4], vec![5, 6], vec![7, 8, 9, 10]];
        let slots: Vec<usize> = sufs.iter().map(|s| s.len() + 2).collect();
        let toks = pack(&sufs, 1..4, &slots);
        assert_eq!(toks.len(), 7);
        // Bases are prefix sums of the chunk's slots: 0, 3, 7.
        let bases: Vec<i32> = toks.iter().map(|t| t.0.base).collect();
        assert_eq!(bases, vec![0, 3, 3, 7, 7, 7, 7]);
        let pos: Vec<i32> = toks.iter().map(|t| t.0.pos).collect();
        assert_eq!(pos, vec![0, 0, 1, 0, 1, 2, 3]);
        for (max_t, max_r) in [(1, 1), (2, 1), (3, 2), (100, 100), (4, 1)] {
            let pieces = split_pieces(&toks, max_t, max_r);
            let flat: Vec<u32> = pieces
                .iter()
                .flat_map(|p| p.0.iter().map(|t| t.id))
                .collect();
            assert_eq!(flat, vec![4, 5, 6, 7, 8, 9, 10]);
            let seqs: Vec<usize> = pieces.iter().flat_map(|p| p.1.clone()).collect();
            assert_eq!(seqs, vec![1, 2, 3]);
            for (piece, sq) in &pieces {
                assert!(piece.len() <= max_t && sq.len() <= max_r);
                let rows: Vec<usize> = piece.iter().filter_map(|t| t.last_of).collect();
                assert_eq!(rows, (0..sq.len()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn chunks_respect_the_budget() {
        let slots = [3, 3, 3, 5, 1];
        let c = plan_chunks(&slots, 10, 60).unwrap();
        assert_eq!(c, vec![0..2, 2..3, 3..5]);
        for r in &c {
            assert!(slots[r.clone()].iter().sum::<usize>() * 10 <= 60);
        }
        assert!(plan_chunks(&slots, 10, 40).is_err());
        assert!(plan_chunks(&[], 10, 40).unwrap().is_empty());
        assert_eq!(chunk_bases(&slots, 1..4), vec![0, 3, 6]);
    }
}
