//! `POST /v1/classify` (texts or library items) and `POST /v1/classify/file` (an upload):
//! zero-shot classification by the cosine to the label texts, as `clamp3 classify`.

use crate::error::ApiError;
use crate::routes::{vectors, Input, VectorOf};
use crate::state::AppState;
use crate::upload::Upload;
use axum::extract::{Request, State};
use axum::Json;
use clamp3_engine::Item;
use clamp3_retrieval::classify::{classify as rank, prompt, DEFAULT_TEMPLATE};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The labels and how they are put into words.
#[derive(Deserialize)]
pub struct Labels {
    labels: Vec<String>,
    template: Option<String>,
    top_k: Option<usize>,
}

impl Labels {
    fn prompts(&self) -> Result<Vec<Item>, ApiError> {
        let labels: Vec<&str> = self.labels.iter().map(|l| l.trim()).collect();
        if labels.is_empty() {
            return Err(ApiError::bad_request("`labels` is empty"));
        }
        if let Some(n) = labels.iter().position(|l| l.is_empty()) {
            return Err(ApiError::bad_request(format!("label {} is empty", n + 1)));
        }
        let template = self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        Ok(labels
            .iter()
            .map(|l| Item::Text(prompt(template, l)))
            .collect())
    }

    fn ranked(&self, vector: &[f32], label_vectors: &[Vec<f32>]) -> Value {
        let hits = rank(
            vector,
            label_vectors,
            self.top_k.unwrap_or(self.labels.len()),
        );
        json!(hits
            .iter()
            .map(|h| json!({"label": self.labels[h.index].trim(), "similarity": h.similarity}))
            .collect::<Vec<_>>())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    #[serde(flatten)]
    labels: Labels,
    inputs: Vec<Input>,
}

pub async fn classify(
    State(state): State<Arc<AppState>>,
    Json(request): Json<ClassifyRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.inputs.is_empty() {
        return Err(ApiError::bad_request("`inputs` is empty"));
    }
    let prompts = request.labels.prompts()?;
    let n_labels = prompts.len();
    let mut sources: Vec<VectorOf> = prompts.into_iter().map(VectorOf::Embed).collect();
    for input in &request.inputs {
        sources.push(input.clone().resolve(&state).await?);
    }
    let mut vectors = vectors(&state, sources).await?;
    let inputs = vectors.split_off(n_labels);
    let results: Vec<Value> = request
        .inputs
        .iter()
        .zip(&inputs)
        .map(|(input, v)| json!({"input": input, "labels": request.labels.ranked(v, &vectors)}))
        .collect();
    Ok(Json(json!({"results": results})))
}

#[derive(Deserialize)]
pub struct FileQuery {
    /// Comma-separated.
    labels: String,
    template: Option<String>,
    top_k: Option<usize>,
    filename: Option<String>,
}

pub async fn file(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(query): axum::extract::Query<FileQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let labels = Labels {
        labels: query.labels.split(',').map(String::from).collect(),
        template: query.template,
        top_k: query.top_k,
    };
    let mut items = labels.prompts()?;
    let upload = Upload::read(request, query.filename.as_deref()).await?;
    let name = upload.name.display().to_string();
    items.push(upload.into_item());
    let mut vectors = state.embedder.embed_all(items).await?;
    let Some(vector) = vectors.pop() else {
        return Err(ApiError::unprocessable("no vector for the file"));
    };
    Ok(Json(
        json!({"file": name, "labels": labels.ranked(&vector, &vectors)}),
    ))
}
