//! Runs all-MiniLM-L6-v2 (candle's BERT, the tokenizers crate) in Rust, one text at a time,
//! and times it.
//!
//!     cargo run --release -- MODEL_DIR < texts.txt > out.json   # one text per line
//!     cargo run --release -- MODEL_DIR --check                  # MODEL_DIR/checks.jsonl
//!
//! MODEL_DIR holds `config.json`, the tokenizer's files and `model.safetensors`: the
//! encoder as `finetune.py` unpacks and checks it, or as `finetune.py --save` writes it after
//! fine-tuning, with `head.safetensors` (one probability per category) and `checks.jsonl`
//! (texts and the probabilities Python computed). With a head, the output per text is its
//! probabilities, else the encoder's mean-pooled output (`compare.py` checks that one against
//! the Python encoder). `--check` prints the largest difference from the check vectors.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

struct Probe {
    tokenizer: Tokenizer,
    model: BertModel,
    head: Option<Linear>,
}

impl Probe {
    fn load(dir: &Path) -> Result<Probe> {
        let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| anyhow!("{e}"))?;
        // The file pads every text to 128 tokens; one text at a time needs no padding at all.
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: 128, ..Default::default() }))
            .map_err(|e| anyhow!("{e}"))?;
        // SAFETY: the weights files are only read, and not changed while the probe runs.
        let weights =
            unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu)? };
        let model = BertModel::load(weights, &config)?;
        let head = dir.join("head.safetensors");
        let head = if head.exists() {
            let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[head], DType::F32, &Device::Cpu)? };
            let weight = vb.get_unchecked("weight")?;
            let bias = vb.get_unchecked("bias")?;
            Some(Linear::new(weight, Some(bias)))
        } else {
            None
        };
        Ok(Probe { tokenizer, model, head })
    }

    /// The mean-pooled output, or with a head, the probability per category.
    fn run(&self, text: &str) -> Result<Vec<f32>> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| anyhow!("{e}"))?;
        let ids = Tensor::new(encoding.get_ids(), &Device::Cpu)?.unsqueeze(0)?;
        let mask = Tensor::new(encoding.get_attention_mask(), &Device::Cpu)?.unsqueeze(0)?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
        let out = match &self.head {
            Some(head) => candle_nn::ops::sigmoid(&head.forward(&mean)?)?,
            None => mean,
        };
        Ok(out.squeeze(0)?.to_vec1::<f32>()?)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.first().ok_or_else(|| anyhow!("usage: encoder-probe MODEL_DIR [--check] < texts"))?);
    let started = Instant::now();
    let probe = Probe::load(dir)?;
    eprintln!("loaded in {:?}", started.elapsed());

    let check = args.iter().any(|a| a == "--check");
    let (texts, want): (Vec<String>, Vec<Vec<f64>>) = if check {
        let mut texts = Vec::new();
        let mut want = Vec::new();
        for line in std::fs::read_to_string(dir.join("checks.jsonl"))?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            texts.push(v["text"].as_str().ok_or_else(|| anyhow!("a check without text"))?.to_owned());
            want.push(serde_json::from_value(v["p"].clone())?);
        }
        (texts, want)
    } else {
        (std::io::stdin().lines().collect::<Result<_, _>>()?, Vec::new())
    };
    let started = Instant::now();
    let outputs = texts.iter().map(|t| probe.run(t)).collect::<Result<Vec<_>>>()?;
    let per_text = started.elapsed().as_secs_f64() * 1000.0 / texts.len().max(1) as f64;
    eprintln!("{} texts, {per_text:.2} ms per text", texts.len());
    if check {
        let worst = outputs
            .iter()
            .zip(&want)
            .flat_map(|(got, want)| got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()))
            .fold(0.0, f64::max);
        println!("{} check vectors, largest difference {worst:.3e}", texts.len());
    } else {
        println!("{}", serde_json::to_string(&outputs)?);
    }
    Ok(())
}
