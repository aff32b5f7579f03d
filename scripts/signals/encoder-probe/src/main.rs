//! Runs all-MiniLM-L6-v2 (candle's BERT, the tokenizers crate) on one text per line of
//! stdin and prints each text's mean-pooled output as JSON; stderr gets the time per text.
//! `compare.py` runs the Python encoder on the same texts and prints the largest difference.
//!
//!     cargo run --release -- MODEL_DIR < texts.txt > rust.json
//!
//! MODEL_DIR holds `config.json`, `tokenizer.json` and `model.safetensors` (the folder
//! `finetune.py` unpacks and checks).

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).ok_or_else(|| anyhow!("usage: encoder-probe MODEL_DIR < texts"))?;
    let dir = Path::new(&dir);
    let started = Instant::now();
    let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| anyhow!("{e}"))?;
    // The file pads every text to 128 tokens; one text at a time needs no padding at all.
    tokenizer.with_padding(Some(PaddingParams::default()));
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: 128, ..Default::default() }))
        .map_err(|e| anyhow!("{e}"))?;
    // SAFETY: the weights file is only read, and not changed while the probe runs.
    let weights = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu)? };
    let model = BertModel::load(weights, &config)?;
    eprintln!("loaded in {:?}", started.elapsed());

    let texts: Vec<String> = std::io::stdin().lines().collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut pooled = Vec::with_capacity(texts.len());
    for text in &texts {
        let encoding = tokenizer.encode(text.as_str(), true).map_err(|e| anyhow!("{e}"))?;
        let ids = Tensor::new(encoding.get_ids(), &Device::Cpu)?.unsqueeze(0)?;
        let mask = Tensor::new(encoding.get_attention_mask(), &Device::Cpu)?.unsqueeze(0)?;
        let hidden = model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
        pooled.push(mean.squeeze(0)?.to_vec1::<f32>()?);
    }
    let per_text = started.elapsed().as_secs_f64() * 1000.0 / texts.len().max(1) as f64;
    eprintln!("{} texts, {per_text:.2} ms per text", texts.len());
    println!("{}", serde_json::to_string(&pooled)?);
    Ok(())
}
