//! `[autonomy]`: the bands whose record is kept, and the bars at which the record proposes
//! a change of the permission map. The policy never changes itself: a proposal is a draft
//! for an admin to simulate and sign (see [`crate::autonomy`]).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::{ActionDef, Ctx, PolicyError, raw};
use crate::money::{Currency, Money};

/// `[autonomy]` as checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AutonomyPolicy {
    /// A countersignature given sooner than this after the decision is a rubber stamp:
    /// it is not counted.
    pub review_floor_secs: u32,
    /// Reversals count when they happened within this many days.
    pub window_days: u32,
    pub loosen: LoosenBar,
    pub tighten: TightenBar,
    /// Action → the upper bounds of its amount bands, ascending (empty: one band for any
    /// amount). Only these actions are kept on record.
    pub bands: BTreeMap<String, Vec<Money>>,
}

/// The bar a band passes before a looser decision is proposed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoosenBar {
    pub min_decisions: u32,
    pub min_unchanged_pct: u32,
    pub min_approvers: u32,
    pub max_reversals: u32,
}

/// The bar at which a stricter decision is proposed for a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TightenBar {
    pub min_decisions: u32,
    pub min_rejected_pct: u32,
    pub min_reversals: u32,
}

pub(super) fn compile(
    cx: &Ctx<'_>,
    raw: Spanned<raw::RawAutonomy>,
    actions: &BTreeMap<String, ActionDef>,
    currencies: &BTreeSet<Currency>,
) -> Result<AutonomyPolicy, PolicyError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let int = |v: &Spanned<i64>, what: &str, lo: i64, hi: i64| -> Result<u32, PolicyError> {
        u32::try_from(*v.get_ref())
            .ok()
            .filter(|n| (lo..=hi).contains(&i64::from(*n)))
            .ok_or_else(|| cx.err(v.span(), format!("autonomy.{what} must be a whole number from {lo} to {hi}")))
    };
    let loosen = LoosenBar {
        min_decisions: int(&raw.loosen.min_decisions, "loosen.min_decisions", 1, 1_000_000)?,
        min_unchanged_pct: int(&raw.loosen.min_unchanged_pct, "loosen.min_unchanged_pct", 50, 100)?,
        // "Several distinct people": one approver's habits are not evidence.
        min_approvers: int(&raw.loosen.min_approvers, "loosen.min_approvers", 2, 10_000)?,
        max_reversals: int(&raw.loosen.max_reversals, "loosen.max_reversals", 0, 1_000_000)?,
    };
    let tighten = TightenBar {
        min_decisions: int(&raw.tighten.min_decisions, "tighten.min_decisions", 1, 1_000_000)?,
        min_rejected_pct: int(&raw.tighten.min_rejected_pct, "tighten.min_rejected_pct", 1, 100)?,
        min_reversals: int(&raw.tighten.min_reversals, "tighten.min_reversals", 1, 1_000_000)?,
    };
    let mut bands = BTreeMap::new();
    for band in &raw.bands {
        let band = band.get_ref();
        let name = band.action.get_ref();
        let Some(def) = actions.get(name) else {
            return Err(cx.err(band.action.span(), format!("autonomy band for unknown action {name:?}")));
        };
        let mut bounds: Vec<Money> = Vec::new();
        if let Some(amounts) = &band.amounts {
            if def.money_param.is_none() {
                return Err(cx.err(
                    amounts.span(),
                    format!("autonomy band amounts on action {name:?}, which has no money parameter"),
                ));
            }
            if amounts.get_ref().is_empty() {
                return Err(cx.err(amounts.span(), "autonomy band amounts: leave the list out for one band"));
            }
            for a in amounts.get_ref() {
                let m: Money = a.get_ref().0.parse().map_err(|e| {
                    cx.err(a.span(), format!("autonomy band amount: {e} (write money as \"25.00 USD\")"))
                })?;
                if !currencies.contains(&m.currency) {
                    return Err(cx.err(a.span(), format!("{m} is in a currency this policy does not accept")));
                }
                if let Some(last) = bounds.last()
                    && (last.currency != m.currency || last.amount >= m.amount)
                {
                    return Err(cx.err(a.span(), "autonomy band amounts must rise, in one currency"));
                }
                bounds.push(m);
            }
        }
        if bands.insert(name.clone(), bounds).is_some() {
            return Err(cx.err(band.action.span(), format!("a second autonomy band list for {name:?}")));
        }
    }
    if bands.is_empty() {
        return Err(cx.err(span, "[autonomy] names no bands: add [[autonomy.bands]] or leave the table out"));
    }
    Ok(AutonomyPolicy {
        review_floor_secs: int(&raw.review_floor_secs, "review_floor_secs", 0, 3600)?,
        window_days: int(&raw.window_days, "window_days", 1, 3650)?,
        loosen,
        tighten,
        bands,
    })
}
