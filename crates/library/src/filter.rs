//! Which items a search or listing may return: `field=value[,value…]` conditions, all of which
//! must hold, turned into the store's payload filter.

use crate::{Error, Result};
use std::str::FromStr;

/// Conditions on items: each is a field and the values it may have; an item passes when every
/// condition holds. Fields: `modality`, `format`, `title`, `shard` (the `I/N` of the
/// `add --shard` that stored the item), and any metadata name (`composer`, `artist`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<(String, Vec<String>)>,
}

impl Filter {
    /// Items of one modality (`text`, `sheet`, `midi`, `audio`, `image`).
    pub fn modality(modality: &str) -> Self {
        Filter {
            conditions: vec![("modality".into(), vec![modality.into()])],
        }
    }

    /// Items stored by one share of split extraction (`I/N`).
    pub fn shard(shard: &str) -> Self {
        Filter {
            conditions: vec![("shard".into(), vec![shard.into()])],
        }
    }

    /// Both filters' conditions.
    pub fn and(mut self, other: Filter) -> Self {
        self.conditions.extend(other.conditions);
        self
    }

    /// No conditions: every item passes.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// The payload path a field is stored under.
    fn payload_path(field: &str) -> String {
        match field {
            "modality" | "format" | "title" | "shard" => field.to_string(),
            other => format!("metadata.{other}"),
        }
    }

    /// The conditions as (payload path, values it may have): each store turns them into its own.
    pub(crate) fn fields(&self) -> Vec<(String, Vec<String>)> {
        self.conditions
            .iter()
            .map(|(field, values)| (Self::payload_path(field), values.clone()))
            .collect()
    }

    /// Whether a record passes (for items checked outside the store).
    pub fn accepts(&self, record: &crate::ItemRecord) -> bool {
        self.conditions.iter().all(|(field, values)| {
            let value = match field.as_str() {
                "modality" => Some(record.modality.as_str()),
                "format" => Some(record.format.as_str()),
                "title" => record.title.as_deref(),
                "shard" => record.shard.as_deref(),
                other => record.metadata.get(other).map(String::as_str),
            };
            value.is_some_and(|v| values.iter().any(|w| w == v))
        })
    }
}

impl FromStr for Filter {
    type Err = Error;

    /// `modality=audio`, `modality=sheet,midi`, `format=abc`, `composer=J.S. Bach`; several
    /// conditions joined by `;`.
    fn from_str(s: &str) -> Result<Self> {
        let mut conditions = Vec::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, values) = part.split_once('=').ok_or_else(|| {
                Error::Invalid(format!(
                    "filter {part:?}: expected FIELD=VALUE (e.g. modality=audio)"
                ))
            })?;
            let field = field.trim();
            // Plain identifiers only: they are payload paths, and `metadata.<name>` must parse.
            let valid_name = field.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && crate::store::valid_key(&Filter::payload_path(field));
            if !valid_name {
                return Err(Error::Invalid(format!(
                    "filter {part:?}: {field:?} is not a field name"
                )));
            }
            let values: Vec<String> = values
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(Error::Invalid(format!("filter {part:?}: no value")));
            }
            if field == "modality" {
                if let Some(bad) = values
                    .iter()
                    .find(|v| !crate::MODALITIES.contains(&v.as_str()))
                {
                    return Err(Error::Invalid(format!(
                        "filter {part:?}: unknown modality {bad:?} (known: {})",
                        crate::MODALITIES.join(", ")
                    )));
                }
            }
            conditions.push((field.to_string(), values));
        }
        Ok(Filter { conditions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conditions_and_refuses_nonsense() {
        let filter: Filter = "modality=sheet,midi; composer = Bach"
            .parse()
            .expect("parses");
        assert_eq!(
            filter.conditions,
            vec![
                (
                    "modality".to_string(),
                    vec!["sheet".to_string(), "midi".to_string()]
                ),
                ("composer".to_string(), vec!["Bach".to_string()]),
            ]
        );
        assert!("modality".parse::<Filter>().is_err());
        assert!("modality=video".parse::<Filter>().is_err());
        assert!("a b=c".parse::<Filter>().is_err());
        assert!("format=".parse::<Filter>().is_err());
        assert!("".parse::<Filter>().expect("empty is fine").is_empty());
    }
}
