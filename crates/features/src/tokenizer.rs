//! Text tokenizers from a Hugging Face `tokenizer.json`, with XLM-R's loaded fast.
//!
//! The `tokenizers` crate builds a Unigram model's prefix trie as one hash map per trie node:
//! for XLM-R's 250 002 pieces that is some two million maps, made on every start and freed on
//! every exit, more than half of a cold `clamp3 search --text` (profiled: 0.8 s of 1.46 s).
//! [`SortedUnigram`] finds the same pieces by binary search over the pieces sorted by their
//! bytes, and runs the same Viterbi search the crate does (SentencePiece's "optimized"
//! encoder: same scores, same order of candidates, same tie-breaking, unknown characters
//! fused), so the ids are the crate's. Normalizer, pre-tokenizer, post-processor and added
//! tokens are still the crate's own, read from the same file.

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Model, Token, Tokenizer, TokenizerImpl};

/// SentencePiece's penalty for an unknown character, below the lowest piece score.
const UNKNOWN_PENALTY: f64 = 10.0;

type UnigramTokenizer = TokenizerImpl<
    SortedUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// A text tokenizer: a Unigram one (XLM-R's) on [`SortedUnigram`], any other through the
/// `tokenizers` crate as it is. Truncation and padding are off: segmenting is ours to do.
#[derive(Clone)]
pub struct TextTokenizer(Inner);

#[derive(Clone)]
enum Inner {
    Unigram(Box<UnigramTokenizer>),
    Other(Box<Tokenizer>),
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Inner::Unigram(_) => "Unigram",
            Inner::Other(_) => "other",
        };
        f.debug_tuple("TextTokenizer").field(&kind).finish()
    }
}

/// The parts of a `tokenizer.json` the Unigram path reads.
#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedEntry>,
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: Option<PreTokenizerWrapper>,
    post_processor: Option<PostProcessorWrapper>,
    decoder: Option<DecoderWrapper>,
    model: UnigramFile,
}

#[derive(Deserialize)]
struct AddedEntry {
    id: u32,
    #[serde(flatten)]
    token: AddedToken,
}

#[derive(Deserialize)]
struct UnigramFile {
    #[serde(rename = "type")]
    kind: String,
    unk_id: Option<usize>,
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    byte_fallback: bool,
}

impl From<Tokenizer> for TextTokenizer {
    /// A tokenizer of the `tokenizers` crate, used as it is configured.
    fn from(tokenizer: Tokenizer) -> Self {
        TextTokenizer(Inner::Other(Box::new(tokenizer)))
    }
}

impl TextTokenizer {
    /// Reads a `tokenizer.json`. A Unigram model without byte fallback (XLM-R's) takes the fast
    /// path; any other file is the `tokenizers` crate's.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cannot = |e: &dyn std::fmt::Display| {
            Error::Tokenizer(format!("cannot load {}: {e}", path.display()))
        };
        let bytes = std::fs::read(path).map_err(|e| cannot(&e))?;
        if let Ok(file) = serde_json::from_slice::<TokenizerFile>(&bytes) {
            if file.model.kind == "Unigram" && !file.model.byte_fallback {
                return Self::unigram(file).map_err(|e| cannot(&e));
            }
        }
        // Not a Unigram file: the crate reads it (and names what is wrong with it).
        let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| cannot(&e))?;
        tokenizer.with_truncation(None).map_err(|e| cannot(&e))?;
        tokenizer.with_padding(None);
        Ok(TextTokenizer(Inner::Other(Box::new(tokenizer))))
    }

    fn unigram(file: TokenizerFile) -> std::result::Result<Self, String> {
        let model = SortedUnigram::new(file.model.vocab, file.model.unk_id)?;
        let mut tokenizer = TokenizerImpl::new(model);
        tokenizer
            .with_normalizer(file.normalizer)
            .with_pre_tokenizer(file.pre_tokenizer)
            .with_post_processor(file.post_processor)
            .with_decoder(file.decoder);
        let tokens: Vec<AddedToken> = file.added_tokens.iter().map(|t| t.token.clone()).collect();
        tokenizer.add_tokens(&tokens);
        // The crate only warns when an added token's id is not the file's; ids are our output.
        for entry in &file.added_tokens {
            let got = tokenizer.token_to_id(&entry.token.content);
            if got != Some(entry.id) {
                return Err(format!(
                    "added token {:?} has id {:?}, the file says {}",
                    entry.token.content, got, entry.id
                ));
            }
        }
        Ok(TextTokenizer(Inner::Unigram(Box::new(tokenizer))))
    }

    /// The ids of `text`, with the post-processor's special tokens (`<s> … </s>`) when
    /// `add_special_tokens`.
    pub fn encode_ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = match &self.0 {
            Inner::Unigram(t) => t.encode_fast(text, add_special_tokens),
            Inner::Other(t) => t.encode_fast(text, add_special_tokens),
        }
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The id of a token (a piece or an added token), if it has one.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.0 {
            Inner::Unigram(t) => t.token_to_id(token),
            Inner::Other(t) => t.token_to_id(token),
        }
    }
}

/// A Unigram model whose pieces are found by binary search in a sorted list instead of a trie
/// of hash maps: built in the time of one sort.
#[derive(Clone)]
pub struct SortedUnigram {
    /// Pieces and scores, by id.
    vocab: Vec<(String, f64)>,
    /// Ids ordered by their piece's bytes, equal pieces by id.
    sorted: Vec<u32>,
    unk_id: Option<usize>,
    min_score: f64,
}

impl SortedUnigram {
    /// The model of `vocab` (piece, score) with this unknown-token id.
    pub fn new(
        vocab: Vec<(String, f64)>,
        unk_id: Option<usize>,
    ) -> std::result::Result<Self, String> {
        if vocab.is_empty() {
            return Err("a Unigram model without pieces".into());
        }
        if unk_id.is_some_and(|id| id >= vocab.len()) {
            return Err(format!(
                "unk_id {unk_id:?} is not among the {} pieces",
                vocab.len()
            ));
        }
        let count = u32::try_from(vocab.len()).map_err(|_| "too many pieces".to_string())?;
        // Sorted first by the pieces' first 8 bytes as one integer (zero-padded: a piece sorts
        // before its extensions either way), then each run of equal keys by whole bytes: most
        // comparisons are integer ones, not calls to memcmp (a third of the load, profiled).
        let head = |piece: &str| {
            let mut bytes = [0u8; 8];
            let n = piece.len().min(8);
            bytes[..n].copy_from_slice(&piece.as_bytes()[..n]);
            u64::from_be_bytes(bytes)
        };
        let mut keyed: Vec<(u64, u32)> = (0..count)
            .map(|id| (head(&vocab[id as usize].0), id))
            .collect();
        keyed.sort_unstable();
        let mut sorted: Vec<u32> = keyed.iter().map(|&(_, id)| id).collect();
        let whole = |a: &u32, b: &u32| {
            vocab[*a as usize]
                .0
                .as_bytes()
                .cmp(vocab[*b as usize].0.as_bytes())
                .then(a.cmp(b))
        };
        let mut start = 0;
        while start < keyed.len() {
            let end = start + keyed[start..].partition_point(|&(key, _)| key == keyed[start].0);
            if end - start > 1 {
                sorted[start..end].sort_unstable_by(whole);
            }
            start = end;
        }
        debug_assert!(sorted.is_sorted_by(|a, b| whole(a, b).is_le()));
        let min_score = vocab.iter().map(|(_, s)| *s).fold(f64::INFINITY, f64::min);
        Ok(SortedUnigram {
            vocab,
            sorted,
            unk_id,
            min_score,
        })
    }

    fn piece(&self, at: usize) -> &[u8] {
        self.vocab[self.sorted[at] as usize].0.as_bytes()
    }

    /// Calls `found(length, id)` for every piece that `text` starts with, shortest first. Of
    /// equal pieces the last id counts, as in the crate's piece-to-id map.
    fn prefixes(&self, text: &[u8], mut found: impl FnMut(usize, u32)) {
        // Invariant: the pieces in `lo..hi` are those starting with `text[..len]`; among them
        // the ones exactly `len` long sort first.
        let (mut lo, mut hi) = (0, self.sorted.len());
        for (len, &byte) in text.iter().enumerate() {
            let range = &self.sorted[lo..hi];
            let byte_at = |id: &u32| self.vocab[*id as usize].0.as_bytes().get(len).copied();
            let first = range.partition_point(|id| byte_at(id) < Some(byte));
            let end = range.partition_point(|id| byte_at(id) <= Some(byte));
            (lo, hi) = (lo + first, lo + end);
            if lo == hi {
                return;
            }
            let mut exact = lo;
            while exact < hi && self.piece(exact).len() == len + 1 {
                exact += 1;
            }
            if exact > lo {
                found(len + 1, self.sorted[exact - 1]);
            }
        }
    }

    /// The best-scoring split of `sentence` into pieces, runs of unknown characters fused, as
    /// the crate's (and SentencePiece's) optimized encoder finds it.
    fn encode(&self, sentence: &str) -> std::result::Result<Vec<(usize, usize)>, String> {
        #[derive(Clone, Copy)]
        struct Best {
            id: usize,
            score: f64,
            starts_at: Option<usize>,
        }
        let size = sentence.len();
        let unk_score = self.min_score - UNKNOWN_PENALTY;
        let mut best = vec![
            Best {
                id: 0,
                score: 0.0,
                starts_at: None,
            };
            size + 1
        ];
        let bytes = sentence.as_bytes();
        let mut starts_at = 0;
        while starts_at < size {
            let here = best[starts_at].score;
            let char_len = sentence[starts_at..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
            let mut has_single_char = false;
            self.prefixes(&bytes[starts_at..], |len, id| {
                let target = &mut best[starts_at + len];
                let score = here + self.vocab[id as usize].1;
                if target.starts_at.is_none() || score > target.score {
                    *target = Best {
                        id: id as usize,
                        score,
                        starts_at: Some(starts_at),
                    };
                }
                has_single_char |= len == char_len;
            });
            if !has_single_char {
                let unk_id = self
                    .unk_id
                    .ok_or("a character outside the pieces, and no unk_id")?;
                let target = &mut best[starts_at + char_len];
                let score = here + unk_score;
                if target.starts_at.is_none() || score > target.score {
                    *target = Best {
                        id: unk_id,
                        score,
                        starts_at: Some(starts_at),
                    };
                }
            }
            starts_at += char_len;
        }
        // Back from the end; consecutive unknowns become one span.
        let mut spans = Vec::new();
        let mut ends_at = size;
        let mut unknown_from: Option<usize> = None;
        let mut unknown_to = 0;
        while ends_at > 0 {
            let node = best[ends_at];
            let start = node.starts_at.ok_or("no path through the text")?;
            if Some(node.id) == self.unk_id {
                if unknown_from.is_none() {
                    unknown_to = ends_at;
                }
                unknown_from = Some(start);
            } else {
                if let Some(from) = unknown_from.take() {
                    spans.push((from, unknown_to));
                }
                spans.push((start, ends_at));
            }
            ends_at = start;
        }
        if let Some(from) = unknown_from {
            spans.push((from, unknown_to));
        }
        spans.reverse();
        Ok(spans)
    }

    /// The id of a piece (the last of equal ones).
    fn id_of(&self, piece: &str) -> Option<u32> {
        let bytes = piece.as_bytes();
        let end = self
            .sorted
            .partition_point(|&id| self.vocab[id as usize].0.as_bytes() <= bytes);
        (end > 0 && self.piece(end - 1) == bytes).then(|| self.sorted[end - 1])
    }
}

impl Model for SortedUnigram {
    // Never trained here; the trait asks for a trainer type, and a Unigram one is the fitting one.
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        if sequence.is_empty() {
            return Ok(Vec::new());
        }
        let spans = self.encode(sequence)?;
        spans
            .into_iter()
            .map(|(start, end)| {
                let piece = &sequence[start..end];
                let id = match self.id_of(piece) {
                    Some(id) => id,
                    None => self.unk_id.ok_or("no unk_id for an unknown piece")? as u32,
                };
                Ok(Token::new(id, piece.to_string(), (start, end)))
            })
            .collect()
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.id_of(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.vocab.get(id as usize).map(|(piece, _)| piece.clone())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.vocab
            .iter()
            .enumerate()
            .map(|(id, (piece, _))| (piece.clone(), id as u32))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("clamp3 reads tokenizer files; it does not write them".into())
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}
