//! Scoring a planner on a labelled evaluation set (`assets/eval/cases.jsonl`, format in
//! `assets/eval/README.md`).
//!
//! Each case is planned through the same governed context as in use ([`Engine::plan_case`])
//! and decided by the policy (nothing is recorded but the planning reads). The scores:
//!
//! - **intent accuracy**: the plan's `intent` equals the case's main (first) intent;
//! - **step precision / recall**: micro-averaged over the sets of action names a plan
//!   proposes and the case expects;
//! - **citation precision**: of the articles a draft cites, the share the case lists as
//!   the ones a correct reply cites; **citation support**: of the citations, the share whose
//!   quote is in a passage the search returned *and* in the sentence its marker sits on;
//! - **replies with promises in review**: every draft the policy found a promise in must
//!   not be `auto`.
//!
//! It also scores the policy's escalation signals on a labelled set of customer messages
//! (`assets/eval/signals/*.jsonl`, format in its README, [`evaluate_signals`]): per category,
//! the **recall** (messages labelled with it in which the policy finds it) and the **false
//! handoffs** (messages that should hand nothing off, written near it, in which the policy
//! finds any signal: each would hand an ordinary case to a person). With the workspace's
//! planner beside it ([`Engine::evaluate_signals_with_planner`]), each message is also
//! planned as a case of its own, and what the planner flags is added to what the policy
//! finds, as a decision adds it: a flag can add a signal, never remove one.

use std::collections::BTreeSet;
use std::path::Path;

use countersign_core::decide::{Scanned, SignalHit, add_flagged, scan};
use countersign_core::model::{Case, Channel, FlaggedSignal, Message, Sender};
use countersign_core::policy::SignalCategory;
use countersign_core::{Outcome, Policy};
use countersign_planner::Planner;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::knowledge::normalize_quote;
use crate::planning::check_citation;
use crate::{Engine, EngineError};

/// One labelled case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalCase {
    pub case: Case,
    pub expected: Expected,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub intents: Vec<String>,
    pub steps: Vec<String>,
    pub articles: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

/// Read a JSON Lines evaluation file; errors name `file:line`.
pub fn load_cases(path: &Path) -> Result<Vec<EvalCase>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: EvalCase = serde_json::from_str(line).map_err(|e| EngineError::BadInput {
            message: format!("{}:{}:{}: {e}", path.display(), i + 1, e.column()),
        })?;
        if case.expected.intents.is_empty() {
            return Err(EngineError::BadInput {
                message: format!("{}:{}: `expected.intents` needs at least the main intent", path.display(), i + 1),
            });
        }
        out.push(case);
    }
    Ok(out)
}

/// Labels from recorded sample cases: the recorded plan's intent, its known actions and
/// the articles its reply cites. Cases whose plan proposes an action the policy does not
/// know are left out (they are policy fixtures with deliberately bad plans, not examples
/// of a good plan).
pub fn from_case_files(files: &[(std::path::PathBuf, crate::CaseFile)], known: &dyn Fn(&str) -> bool) -> Vec<EvalCase> {
    files
        .iter()
        .filter(|(_, f)| f.plan.steps.iter().all(|s| known(&s.action)))
        .map(|(_, f)| {
            let steps: BTreeSet<String> = f.plan.steps.iter().map(|s| s.action.clone()).collect();
            let articles: BTreeSet<String> =
                f.plan.reply.iter().flat_map(|r| r.citations.iter().map(|c| c.article_id.clone())).collect();
            EvalCase {
                case: f.case.clone(),
                expected: Expected {
                    intents: vec![f.plan.intent.clone()],
                    steps: steps.into_iter().collect(),
                    articles: articles.into_iter().collect(),
                    notes: String::new(),
                },
            }
        })
        .collect()
}

/// How the planner did on one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseScore {
    pub case_id: String,
    pub expected_intent: String,
    pub intent: String,
    pub expected_steps: Vec<String>,
    pub steps: Vec<String>,
    pub expected_articles: Vec<String>,
    pub cited: Vec<String>,
    pub citations: usize,
    pub unsupported_citations: usize,
    /// The reply decision (`auto`, `confirm`…).
    pub reply: Option<Outcome>,
    pub promises: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A ratio with its parts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratio {
    pub hits: usize,
    pub total: usize,
}

impl Ratio {
    /// In per cent, to one decimal (`None` when there is nothing to count).
    pub fn percent(&self) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)] // a score for people, not money
        Some((self.hits as f64 * 1000.0 / self.total as f64).round() / 10.0)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.percent() {
            Some(p) => write!(f, "{p:.1}% ({}/{})", self.hits, self.total),
            None => write!(f, "n/a (0/0)"),
        }
    }
}

/// The scores of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub planner: String,
    pub cases: usize,
    pub failed: usize,
    pub intent_accuracy: Ratio,
    pub step_precision: Ratio,
    pub step_recall: Ratio,
    pub citation_precision: Ratio,
    pub citation_support: Ratio,
    pub promises_in_review: Ratio,
    /// Wall time per case, p50 and p99, in microseconds.
    pub p50_us: u64,
    pub p99_us: u64,
    pub scores: Vec<CaseScore>,
}

impl Engine {
    /// Plan and decide every case with `planner` and score the result. Records the
    /// planning reads in this engine's evidence log: run it on a data dir of its own.
    /// Score the workspace's planner on `set`: a labelled file, or (none) the workspace's
    /// sample cases labelled by their recorded plans (plans with unknown actions left out).
    pub fn evaluate_set(&self, set: Option<&Path>) -> Result<EvalReport, EngineError> {
        let cases = match set {
            Some(file) => load_cases(file)?,
            None => {
                let files = self.workspace().sample_cases()?;
                from_case_files(&files, &|a| self.policy().actions.contains_key(a))
            }
        };
        self.evaluate(&cases, self.configured_planner()?.as_ref())
    }

    pub fn evaluate(&self, cases: &[EvalCase], planner: &dyn Planner) -> Result<EvalReport, EngineError> {
        let mut scores = Vec::new();
        let mut times = Vec::new();
        let (mut intent, mut sp, mut sr, mut cp, mut cs, mut pr) = Default::default();
        let mut failed = 0;
        for ec in cases {
            let start = std::time::Instant::now();
            let score = self.score_one(ec, planner);
            times.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
            let score = match score {
                Ok(s) => s,
                Err(e) => {
                    failed += 1;
                    CaseScore {
                        case_id: ec.case.id.clone(),
                        expected_intent: ec.expected.intents[0].clone(),
                        intent: String::new(),
                        expected_steps: ec.expected.steps.clone(),
                        steps: Vec::new(),
                        expected_articles: ec.expected.articles.clone(),
                        cited: Vec::new(),
                        citations: 0,
                        unsupported_citations: 0,
                        reply: None,
                        promises: 0,
                        error: Some(e.to_string()),
                    }
                }
            };
            tally(&score, &mut intent, &mut sp, &mut sr, &mut cp, &mut cs, &mut pr);
            scores.push(score);
        }
        times.sort_unstable();
        let at = |q: usize| times.get((times.len().saturating_sub(1)) * q / 100).copied().unwrap_or(0);
        Ok(EvalReport {
            planner: planner.name().to_string(),
            cases: cases.len(),
            failed,
            intent_accuracy: intent,
            step_precision: sp,
            step_recall: sr,
            citation_precision: cp,
            citation_support: cs,
            promises_in_review: pr,
            p50_us: at(50),
            p99_us: at(99),
            scores,
        })
    }

    fn score_one(&self, ec: &EvalCase, planner: &dyn Planner) -> Result<CaseScore, EngineError> {
        let planned = self.plan_case(&ec.case, planner)?;
        let decision = self.decide_planned(&ec.case, &planned)?;
        let steps: BTreeSet<String> = planned.plan.steps.iter().map(|s| s.action.clone()).collect();
        let reply = planned
            .plan
            .reply
            .clone()
            .unwrap_or(countersign_core::model::ReplyDraft { text: String::new(), citations: Vec::new() });
        let passages = planned.passages.iter().map(|p| ((p.article_id.clone(), p.anchor.clone()), p.clone())).collect();
        let mut unsupported = 0;
        for (i, c) in reply.citations.iter().enumerate() {
            let resolves = check_citation(c, &passages).resolved;
            let marker = format!("[{}]", i + 1);
            let sentence = reply.text.lines().find(|l| l.contains(&marker)).unwrap_or_default();
            let in_sentence = normalize_quote(sentence).contains(&normalize_quote(&c.quote));
            if !(resolves && in_sentence) {
                unsupported += 1;
            }
        }
        let cited: BTreeSet<String> = reply.citations.iter().map(|c| c.article_id.clone()).collect();
        let (reply_outcome, promises) =
            decision.reply.as_ref().map_or((None, 0), |r| (Some(r.decision), r.promises.len()));
        Ok(CaseScore {
            case_id: ec.case.id.clone(),
            expected_intent: ec.expected.intents[0].clone(),
            intent: planned.plan.intent.clone(),
            expected_steps: ec.expected.steps.clone(),
            steps: steps.into_iter().collect(),
            expected_articles: ec.expected.articles.clone(),
            cited: cited.into_iter().collect(),
            citations: reply.citations.len(),
            unsupported_citations: unsupported,
            reply: reply_outcome,
            promises,
            error: None,
        })
    }
}

fn tally(
    s: &CaseScore,
    intent: &mut Ratio,
    sp: &mut Ratio,
    sr: &mut Ratio,
    cp: &mut Ratio,
    cs: &mut Ratio,
    pr: &mut Ratio,
) {
    intent.total += 1;
    if s.error.is_some() {
        sr.total += s.expected_steps.len();
        return;
    }
    if s.intent == s.expected_intent {
        intent.hits += 1;
    }
    let hit = |have: &[String], want: &[String]| have.iter().filter(|h| want.contains(h)).count();
    sp.hits += hit(&s.steps, &s.expected_steps);
    sp.total += s.steps.len();
    sr.hits += hit(&s.expected_steps, &s.steps);
    sr.total += s.expected_steps.len();
    cp.hits += hit(&s.cited, &s.expected_articles);
    cp.total += s.cited.len();
    cs.total += s.citations;
    cs.hits += s.citations - s.unsupported_citations.min(s.citations);
    if s.promises > 0 {
        pr.total += 1;
        if s.reply.is_some_and(|r| r != Outcome::Auto) {
            pr.hits += 1;
        }
    }
}

/// One labelled customer message of a signal set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSample {
    pub id: String,
    pub text: String,
    /// The categories a person would hand this message off for (empty: none).
    pub expect: Vec<SignalCategory>,
    /// For a message that should hand nothing off: the category whose words it uses.
    #[serde(default)]
    pub near: Option<SignalCategory>,
    /// For a message that should hand nothing off and uses no category's words: an
    /// everyday message (where is my order, a return, a size).
    #[serde(default)]
    pub ordinary: bool,
    #[serde(default)]
    pub note: String,
}

/// Read a signal set (JSON Lines); errors name `file:line:column`.
pub fn load_signal_set(path: &Path) -> Result<(Vec<SignalSample>, String), EngineError> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let text = String::from_utf8(bytes)
        .map_err(|e| EngineError::BadInput { message: format!("{}: not UTF-8: {e}", path.display()) })?;
    let mut out: Vec<SignalSample> = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at =
            |message: String| EngineError::BadInput { message: format!("{}:{}: {message}", path.display(), i + 1) };
        let s: SignalSample = serde_json::from_str(line).map_err(|e| EngineError::BadInput {
            message: format!("{}:{}:{}: {e}", path.display(), i + 1, e.column()),
        })?;
        let kinds = usize::from(!s.expect.is_empty()) + usize::from(s.near.is_some()) + usize::from(s.ordinary);
        if kinds != 1 {
            return Err(at(format!(
                "{}: a message names exactly one of `expect` categories, the one it is `near`, or `ordinary`",
                s.id
            )));
        }
        if !ids.insert(s.id.clone()) {
            return Err(at(format!("duplicate id {:?}", s.id)));
        }
        out.push(s);
    }
    Ok((out, digest))
}

/// Recall and false handoffs for one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryScore {
    pub category: SignalCategory,
    /// Messages labelled with the category in which the policy finds it.
    pub recall: Ratio,
    /// Messages near the category, labelled with none, in which the policy finds any signal.
    pub false_handoffs: Ratio,
}

/// A message the policy got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct SignalMiss {
    pub id: String,
    pub text: String,
    pub expected: Vec<SignalCategory>,
    /// What the policy found: `category: matched words`.
    pub found: Vec<String>,
    /// Patterns' hits the learned models set aside as ordinary words: `category: matched words`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<String>,
}

/// A signal set scored against a policy.
#[derive(Debug, Clone, Serialize)]
pub struct SignalReport {
    pub set: String,
    /// SHA-256 of the set file, so a report says which version it scored.
    pub set_sha256: String,
    pub policy_id: String,
    pub policy_hash: String,
    pub messages: usize,
    pub categories: Vec<CategoryScore>,
    /// Messages with labels in which every labelled category is found.
    pub recall: Ratio,
    /// Messages near a category, with no label, in which any signal is found.
    pub false_handoffs: Ratio,
    /// Ordinary messages (no category's words) in which any signal is found.
    pub ordinary_false_handoffs: Ratio,
    /// Messages in which the learned models set a pattern's hit aside as ordinary words
    /// (`[signal_model] patterns_min_probability`): of those labelled with the hit's
    /// category, and of the others.
    pub set_aside: SetAside,
    /// Messages reliably in a language the signals do not read (`[signal_languages]`), on
    /// which a person reads the case before any write or reply.
    pub unread_language: UnreadLanguage,
    /// The planner's reading, when it read the messages too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planner: Option<PlannerReading>,
    pub misses: Vec<SignalMiss>,
}

/// What the workspace's planner added to the policy's signals on a set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlannerReading {
    /// The planner's name (`llm:openai:MODEL`, `local`).
    pub planner: String,
    /// Messages it planned (those it could not are in `failed`).
    pub read: usize,
    /// Messages it could not plan (scored on the policy's signals alone, as a case whose
    /// planning failed still hands off on them). The run stops, scoring nothing, when
    /// [`FAILURES_IN_A_ROW`] messages in a row fail: a key refused or a quota spent would
    /// otherwise fail every call and pass the policy's figures off as the planner's.
    pub failed: Vec<PlannerFailure>,
    /// Labelled messages found only because of its flags.
    pub found_only_by_it: usize,
    /// Messages labelled with nothing handed off only because of its flags.
    pub handed_off_only_by_it: usize,
}

/// A message the planner could not plan, and why.
#[derive(Debug, Clone, Serialize)]
pub struct PlannerFailure {
    pub id: String,
    pub error: String,
}

/// How many messages in a row the planner may fail to plan before the run stops.
pub const FAILURES_IN_A_ROW: usize = 5;

/// What a planner flagged in one message, or why it could not read it.
type ReadFlags<'a> = dyn FnMut(&SignalSample) -> Result<Vec<FlaggedSignal>, String> + 'a;

/// Messages in a language the policy's signals do not read, by label.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct UnreadLanguage {
    /// Labelled with a category…
    pub labelled: usize,
    /// … of which the signals missed (a person reads them all the same).
    pub labelled_missed: usize,
    /// Labelled with none.
    pub unlabelled: usize,
}

/// How often the patterns' hits were set aside, and in messages of which labels.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SetAside {
    /// Messages whose set-aside hit is of a category they are labelled with (always a miss:
    /// the models give the category less than they need to find it themselves).
    pub of_a_labelled_category: usize,
    /// Messages with a set-aside hit of no category they are labelled with.
    pub not_of_a_labelled_category: usize,
}

impl SignalReport {
    /// The goal of issue 16: recall at least 98 % and false handoffs at most 2 %, overall
    /// (on the messages near a category and on ordinary ones alike).
    pub fn meets_goal(&self) -> bool {
        // In whole numbers, not rounded percentages: 97.95 % is not 98 %.
        let at_most_2 = |r: &Ratio| r.hits * 100 <= r.total * 2;
        self.recall.total > 0
            && self.recall.hits * 100 >= self.recall.total * 98
            && at_most_2(&self.false_handoffs)
            && at_most_2(&self.ordinary_false_handoffs)
    }
}

/// Score `policy`'s escalation signals on a labelled set of messages.
pub fn evaluate_signals(policy: &Policy, path: &Path) -> Result<SignalReport, EngineError> {
    let (samples, set_sha256) = load_signal_set(path)?;
    score_signals(policy, path, &samples, set_sha256, None)
}

/// [`evaluate_signals`] on the samples read from `path`, with what `planner` (named by
/// the `&str`) flags in each message added; an error when it fails on
/// [`FAILURES_IN_A_ROW`] messages in a row.
fn score_signals(
    policy: &Policy,
    path: &Path,
    samples: &[SignalSample],
    set_sha256: String,
    mut planner: Option<(&str, &mut ReadFlags<'_>)>,
) -> Result<SignalReport, EngineError> {
    let mut reading =
        planner.as_ref().map(|(name, _)| PlannerReading { planner: name.to_string(), ..Default::default() });
    let mut in_a_row = 0;
    let mut categories: Vec<CategoryScore> = SignalCategory::ALL
        .iter()
        .map(|c| CategoryScore { category: *c, recall: Ratio::default(), false_handoffs: Ratio::default() })
        .collect();
    let (mut recall, mut false_handoffs, mut ordinary) = (Ratio::default(), Ratio::default(), Ratio::default());
    let mut misses = Vec::new();
    let mut aside = SetAside::default();
    let mut unread = UnreadLanguage::default();
    // The encoder reads the set's messages together, in batches, before they are scanned.
    if policy.uses_encoder() {
        countersign_core::learned::encoder_read_ahead(&samples.iter().map(|s| s.text.clone()).collect::<Vec<_>>());
    }
    for s in samples {
        let Scanned { signals: policy_hits, set_aside } = scan(policy, [s.text.as_str()]);
        let hits = match (&mut planner, &mut reading) {
            (Some((name, read)), Some(reading)) => {
                let hits = match read(s) {
                    Ok(flags) => {
                        reading.read += 1;
                        in_a_row = 0;
                        add_flagged(policy, &flags, name, &policy_hits)
                    }
                    Err(error) => {
                        in_a_row += 1;
                        if in_a_row >= FAILURES_IN_A_ROW {
                            return Err(EngineError::Planner {
                                planner: name.to_string(),
                                message: format!(
                                    "{in_a_row} messages in a row could not be planned, the last ({}): {error}; \
                                     nothing was scored",
                                    s.id
                                ),
                            });
                        }
                        reading.failed.push(PlannerFailure { id: s.id.clone(), error });
                        policy_hits.clone()
                    }
                };
                let handed_off = |h: &[SignalHit]| {
                    if s.expect.is_empty() {
                        !h.is_empty()
                    } else {
                        s.expect.iter().all(|c| h.iter().any(|h| h.category == *c))
                    }
                };
                if handed_off(&hits) && !handed_off(&policy_hits) {
                    if s.expect.is_empty() {
                        reading.handed_off_only_by_it += 1;
                    } else {
                        reading.found_only_by_it += 1;
                    }
                }
                hits
            }
            _ => policy_hits,
        };
        if set_aside.iter().any(|h| s.expect.contains(&h.category)) {
            aside.of_a_labelled_category += 1;
        } else if !set_aside.is_empty() {
            aside.not_of_a_labelled_category += 1;
        }
        let found = |c: SignalCategory| hits.iter().any(|h| h.category == c);
        let wrong = if s.ordinary {
            ordinary.total += 1;
            ordinary.hits += usize::from(!hits.is_empty());
            !hits.is_empty()
        } else if s.expect.is_empty() {
            false_handoffs.total += 1;
            false_handoffs.hits += usize::from(!hits.is_empty());
            if let Some(score) = categories.iter_mut().find(|c| Some(c.category) == s.near) {
                score.false_handoffs.total += 1;
                score.false_handoffs.hits += usize::from(!hits.is_empty());
            }
            !hits.is_empty()
        } else {
            for score in categories.iter_mut().filter(|c| s.expect.contains(&c.category)) {
                score.recall.total += 1;
                score.recall.hits += usize::from(found(score.category));
            }
            let all = s.expect.iter().all(|c| found(*c));
            recall.total += 1;
            recall.hits += usize::from(all);
            !all
        };
        if policy.signal_languages.as_ref().is_some_and(|l| l.unread_language(&s.text).is_some()) {
            if s.expect.is_empty() {
                unread.unlabelled += 1;
            } else {
                unread.labelled += 1;
                unread.labelled_missed += usize::from(wrong);
            }
        }
        if wrong {
            misses.push(SignalMiss {
                id: s.id.clone(),
                text: s.text.clone(),
                expected: s.expect.clone(),
                found: hits.iter().map(|h| format!("{}: {}", h.category, h.matched)).collect(),
                set_aside: set_aside.iter().map(|h| format!("{}: {}", h.category, h.matched)).collect(),
            });
        }
    }
    categories.retain(|c| c.recall.total + c.false_handoffs.total > 0);
    Ok(SignalReport {
        set: path.display().to_string(),
        set_sha256,
        policy_id: policy.id.clone(),
        policy_hash: policy.hash.clone(),
        messages: samples.len(),
        categories,
        recall,
        false_handoffs,
        ordinary_false_handoffs: ordinary,
        set_aside: aside,
        unread_language: unread,
        planner: reading,
        misses,
    })
}

impl Engine {
    /// Score this workspace's policy's escalation signals on a labelled set.
    pub fn evaluate_signals(&self, set: &Path) -> Result<SignalReport, EngineError> {
        evaluate_signals(&self.policy(), set)
    }

    /// [`Engine::evaluate_signals`], with the workspace's planner reading every message
    /// too: each is planned as a case of its own (one planning a message: an LLM planner's
    /// request, more when it calls tools, whose reads go to the workspace's connector and
    /// are recorded in this engine's log: run it on a data dir of its own), and what the
    /// planner flags is added as a decision adds it. `progress` hears (done, of) before
    /// each message and (of, of) at the end.
    pub fn evaluate_signals_with_planner(
        &self,
        set: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<SignalReport, EngineError> {
        self.evaluate_signals_planned_by(set, self.configured_planner()?.as_ref(), progress)
    }

    /// [`Engine::evaluate_signals_with_planner`] with `planner` instead of the workspace's.
    pub fn evaluate_signals_planned_by(
        &self,
        set: &Path,
        planner: &dyn Planner,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<SignalReport, EngineError> {
        let (samples, set_sha256) = load_signal_set(set)?;
        let of = samples.len();
        let mut done = 0;
        let mut read = |s: &SignalSample| {
            progress(done, of);
            done += 1;
            let case = self.signal_case(s);
            self.plan_case(&case, planner).map(|p| p.plan.signals).map_err(|e| e.to_string())
        };
        let report = score_signals(&self.policy(), set, &samples, set_sha256, Some((planner.name(), &mut read)))?;
        progress(of, of);
        Ok(report)
    }

    /// One message of a signal set as a case: the customer's only message, arriving as
    /// the workspace's first source's cases do (without a source: a chat, its tenant, store
    /// and platform `eval`), from a customer the case does not name.
    fn signal_case(&self, s: &SignalSample) -> Case {
        let running = self.running();
        let source = running.workspace.sources.first();
        let or_eval = |v: Option<&String>| v.cloned().unwrap_or_else(|| "eval".to_string());
        Case {
            id: format!("signals:{}", s.id),
            tenant: or_eval(source.map(|s| &s.tenant)),
            store: or_eval(source.map(|s| &s.store)),
            platform: or_eval(source.map(|s| &s.platform)),
            channel: source.map_or(Channel::Chat, |s| s.channel),
            customer: None,
            subject: None,
            messages: vec![Message { from: Sender::Customer, text: s.text.clone(), at: None }],
            order_ids: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(recall: (usize, usize), near: (usize, usize), ordinary: (usize, usize)) -> SignalReport {
        let r = |(hits, total)| Ratio { hits, total };
        SignalReport {
            set: "set.jsonl".into(),
            set_sha256: String::new(),
            policy_id: "p".into(),
            policy_hash: String::new(),
            messages: 0,
            categories: Vec::new(),
            recall: r(recall),
            false_handoffs: r(near),
            ordinary_false_handoffs: r(ordinary),
            set_aside: SetAside::default(),
            unread_language: UnreadLanguage::default(),
            planner: None,
            misses: Vec::new(),
        }
    }

    #[test]
    fn the_goal_counts_false_handoffs_on_ordinary_messages_too() {
        assert!(report((98, 100), (2, 100), (0, 0)).meets_goal(), "no ordinary messages: the near ones decide");
        assert!(report((98, 100), (2, 100), (2, 100)).meets_goal());
        assert!(!report((98, 100), (2, 100), (3, 100)).meets_goal(), "3 % of ordinary messages handed off");
        assert!(!report((98, 100), (3, 100), (0, 100)).meets_goal());
        assert!(!report((97, 100), (0, 100), (0, 100)).meets_goal());
        assert!(!report((1959, 2000), (0, 100), (0, 100)).meets_goal(), "97.95 % rounds to 98.0 % and is still short");
        assert!(!report((0, 0), (0, 100), (0, 100)).meets_goal(), "nothing to find is no recall");
    }
}
