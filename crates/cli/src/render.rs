//! How results read as text (with `--json` they are printed as JSON instead): one
//! function per kind of result, so a handler is a call and a render.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use countersign_core::model::Pause;
use countersign_core::{Outcome, PlanDecision};
use countersign_engine::cases::{CaseRun, PlanRun};
use countersign_engine::checkpoints::CheckpointReport;
use countersign_engine::knowledge::KbIndexReport;
use countersign_engine::{
    DemoCase, Engine, KbArticle, KbHit, LogVerification, LoggedEvent, PauseRecord, Review, RosterMember, StepRecord,
};
use serde::Serialize;

/// Print `value` as JSON with `--json`, else as `text` says; exit 0.
pub fn out<T: Serialize + ?Sized>(json: bool, value: &T, text: impl FnOnce(&T)) -> anyhow::Result<ExitCode> {
    if json {
        print_json(value)?;
    } else {
        text(value);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn eval(r: &countersign_engine::eval::EvalReport, misses: bool) {
    if misses {
        for s in &r.scores {
            let steps_ok = s.steps == s.expected_steps;
            let cites_ok = s.cited.iter().all(|c| s.expected_articles.contains(c));
            if s.intent != s.expected_intent || !steps_ok || !cites_ok || s.error.is_some() {
                println!(
                    "{}: intent {} (want {}); steps {:?} (want {:?}); cited {:?} (want {:?}){}",
                    s.case_id,
                    s.intent,
                    s.expected_intent,
                    s.steps,
                    s.expected_steps,
                    s.cited,
                    s.expected_articles,
                    s.error.as_ref().map(|e| format!("; error: {e}")).unwrap_or_default()
                );
            }
        }
        println!();
    }
    println!("planner {} on {} cases ({} failed)", r.planner, r.cases, r.failed);
    println!("  intent accuracy       {}", r.intent_accuracy);
    println!("  step precision        {}", r.step_precision);
    println!("  step recall           {}", r.step_recall);
    println!("  citation precision    {}", r.citation_precision);
    println!("  citation support      {}", r.citation_support);
    println!("  promises in review    {}", r.promises_in_review);
    println!("  per case              p50 {} µs, p99 {} µs", r.p50_us, r.p99_us);
}

pub fn signal_eval(r: &countersign_engine::eval::SignalReport, misses: bool) {
    if misses {
        for m in &r.misses {
            let expected: Vec<&str> = m.expected.iter().map(|c| c.as_str()).collect();
            let label = if expected.is_empty() { "handed off for nothing".to_string() } else { expected.join(", ") };
            let aside = if m.set_aside.is_empty() { String::new() } else { format!(", set aside {:?}", m.set_aside) };
            println!("{} ({label}): {:?} -> found {:?}{aside}", m.id, m.text, m.found);
        }
        println!();
    }
    let with = r.planner.as_ref().map(|p| format!(" with the flags of the planner {}", p.planner)).unwrap_or_default();
    println!("signals of policy {}{with} on {} ({} messages, sha256 {})", r.policy_id, r.set, r.messages, r.set_sha256);
    println!("  {:<18} {:<22} false handoffs", "category", "recall");
    for c in &r.categories {
        println!("  {:<18} {:<22} {}", c.category.as_str(), c.recall.to_string(), c.false_handoffs);
    }
    println!("  {:<18} {:<22} {}", "all", r.recall.to_string(), r.false_handoffs);
    if r.ordinary_false_handoffs.total > 0 {
        println!("  {:<18} {:<22} {}", "ordinary messages", "", r.ordinary_false_handoffs);
    }
    let aside = r.set_aside;
    if aside.not_of_a_labelled_category + aside.of_a_labelled_category > 0 {
        println!(
            "  patterns' hits set aside as ordinary words: in {} messages not of their category, {} of it",
            aside.not_of_a_labelled_category, aside.of_a_labelled_category
        );
    }
    let unread = r.unread_language;
    if unread.labelled + unread.unlabelled > 0 {
        println!(
            "  in a language the signals do not read (a person reads the case first): {} labelled ({} of them \
             missed), {} not",
            unread.labelled, unread.labelled_missed, unread.unlabelled
        );
    }
    if let Some(p) = &r.planner {
        println!(
            "  the planner ({}) read {} of {} messages: {} labelled found only by its flags, {} handed off only by them",
            p.planner, p.read, r.messages, p.found_only_by_it, p.handed_off_only_by_it
        );
        if !p.failed.is_empty() {
            println!("  it could not plan {} (scored on the policy's signals alone):", p.failed.len());
            for f in p.failed.iter().take(10) {
                println!("    {}: {}", f.id, f.error);
            }
            if p.failed.len() > 10 {
                println!("    … and {} more (--json lists them all)", p.failed.len() - 10);
            }
        }
    }
    println!("  goal (recall >= 98%, false handoffs <= 2%): {}", if r.meets_goal() { "met" } else { "not met" });
}

pub fn run(run: &CaseRun) {
    for r in &run.recovered {
        println!("recovered {} {} ({}): {}", r.plan_id, r.step_id, r.action, r.state.as_str());
    }
    steps(&run.decision);
    println!();
    for s in &run.steps {
        let ran = run.ran.iter().find(|r| r.plan_id == s.plan_id && r.step_id == s.step_id);
        let note = ran.and_then(|r| r.error.clone()).unwrap_or_default();
        println!("  {:<4} {:<30} {:<12} {note}", s.step_id, s.action, s.state.as_str());
    }
}

pub fn plan(run: &PlanRun) {
    let plan = &run.planned.plan;
    println!("intent: {}", plan.intent);
    steps(&run.opened.decision);
    if let Some(reply) = &plan.reply {
        println!("\n{}\n", reply.text);
        for (i, c) in reply.citations.iter().enumerate() {
            println!(
                "[{}] {} v{} #{}",
                i + 1,
                c.article_id,
                c.version.as_deref().unwrap_or("?"),
                c.anchor.as_deref().unwrap_or("-")
            );
        }
    }
}

fn badge(o: Outcome) -> &'static str {
    match o {
        Outcome::Auto => "RUNS      ",
        Outcome::Confirm => "WAITS(agt)",
        Outcome::Supervisor => "WAITS(tl) ",
        Outcome::Recommend => "ADVICE    ",
        Outcome::Forbid => "REFUSED   ",
    }
}

pub fn demo(engine: &Engine, results: &[DemoCase]) {
    let p = engine.policy();
    println!("Policy {} v{} ({})   evidence: {}", p.id, p.version, p.hash, engine.store_path().display());
    println!();
    for r in results {
        let said: String = r.customer_says.chars().take(90).collect();
        println!("{}  [{}]  intent: {}", r.case_id, r.channel, r.intent);
        println!("  customer: \"{said}\"");
        if r.decision.handoff {
            let sig: Vec<_> = r.decision.signals.iter().map(|s| s.id.as_str()).collect();
            println!("  HANDOFF to a human: {}", sig.join(", "));
        }
        if !r.decision.set_aside.is_empty() {
            let words: Vec<_> = r.decision.set_aside.iter().map(|s| format!("{} ({:?})", s.id, s.matched)).collect();
            println!("  read as ordinary words, not handed off: {}", words.join(", "));
        }
        steps(&r.decision);
        println!();
    }
    let mut tally = std::collections::BTreeMap::new();
    for r in results {
        for (o, n) in r.decision.tally() {
            *tally.entry(o).or_insert(0usize) += n;
        }
    }
    let parts: Vec<String> = tally.iter().map(|(o, n)| format!("{n} {o}")).collect();
    println!("{} cases, steps: {}", results.len(), parts.join(", "));
}

pub fn steps(d: &PlanDecision) {
    for s in &d.steps {
        let why = s.reasons.first().map(|r| r.text.as_str()).unwrap_or_default();
        println!("  {} {:<30} {}", badge(s.decision), s.action, why);
    }
    if let Some(r) = &d.reply {
        let why = r.reasons.first().map(|r| r.text.as_str()).unwrap_or_default();
        println!("  {} {:<30} {}", badge(r.decision), "reply", why);
        for c in r.claims.iter().filter(|c| c.status != countersign_core::claims::ClaimStatus::Supported) {
            println!("      {} {:?}: {}", countersign_engine::views::snake(&c.status), c.claim, c.reason);
            println!("        > {}", c.sentence);
        }
    }
}

pub fn verify(v: &LogVerification, what: &str) {
    if let Some(b) = &v.chain.first_broken {
        println!("{what}: BROKEN at event {}: {}", b.seq, b.problem);
    } else {
        println!("{what}: ok — {} events, head {}", v.chain.count, v.chain.head.to_hex());
    }
    crate::admin::print_checkpoints(&v.checkpoints);
    match &v.witnessed {
        Some(w) if w.ok => println!("witnessed by the team at {} events (head {}): ok", w.count, w.head),
        Some(w) => println!(
            "witnessed by the team at {} events (head {}): DOES NOT HOLD: {}",
            w.count,
            w.head,
            w.problem.as_deref().unwrap_or("")
        ),
        None => {}
    }
}

pub fn pause(p: &Pause) {
    println!("paused {} {:?} as {} (by {}, {})", p.scope.as_str(), p.value, p.id, p.set_by, p.set_at);
}

pub fn pauses(active: &[Pause]) {
    if active.is_empty() {
        println!("no active pauses");
    }
    for p in active {
        println!("{}  {} {:?}  set by {} at {} ({})", p.id, p.scope.as_str(), p.value, p.set_by, p.set_at, p.reason);
    }
}

pub fn pause_history(history: &[PauseRecord]) {
    for r in history {
        let state = match &r.cleared {
            Some(c) => format!("cleared by {} at {} ({})", c.by, c.at, c.reason),
            None => "active".into(),
        };
        let p = &r.pause;
        println!(
            "{}  {} {:?}  set by {} at {} ({})  {state}",
            p.id,
            p.scope.as_str(),
            p.value,
            p.set_by,
            p.set_at,
            p.reason
        );
    }
}

pub fn review_queue(queue: &[StepRecord]) {
    if queue.is_empty() {
        println!("nothing waits for review");
    }
    for s in queue {
        let proof = if s.decision == "supervisor" { " (on the roster: --as LEAD_ID)" } else { "" };
        let needs = s.approver_roles.join(" or ");
        println!(
            "{} {}  {:<30} {:<10} case {}  needs {needs}{proof}",
            s.plan_id, s.step_id, s.action, s.decision, s.case_id
        );
    }
}

pub fn reviewed(step: &StepRecord) {
    println!("{} {} is now {}", step.plan_id, step.step_id, step.state.as_str());
}

pub fn review(review: &Review) {
    reviewed(&review.step);
    for r in &review.ran {
        step_run(r);
    }
}

/// One step's run (or settling): where it stands now, and why when it did not succeed.
pub fn step_run(r: &countersign_engine::execute::StepRun) {
    let note = r.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    println!("ran {} {} ({}): {}{note}", r.plan_id, r.step_id, r.action, r.state.as_str());
}

pub fn roster(members: &[RosterMember]) {
    if members.is_empty() {
        println!("the roster is empty: supervisor steps cannot be approved (see `countersign roster hash`)");
    }
    for m in members {
        println!("{:<20} {:<12} {}", m.id, m.role, m.name.as_deref().unwrap_or_default());
    }
}

pub fn encoder_status(status: &serde_json::Value) {
    let dir = status["dir"].as_str().unwrap_or_default();
    if status["in_place"].as_bool() == Some(true) {
        println!("the signal encoder's base is in {dir}, each file as pinned");
    } else {
        println!(
            "the signal encoder's base is not in {dir} (or not as pinned): `countersign encoder fetch` downloads it"
        );
        println!("from {}", status["url"].as_str().unwrap_or_default());
    }
}

/// Progress of a fetch on stderr: a line that updates itself on a terminal, else a line
/// per tenth of the download.
pub fn fetching() -> impl Fn(countersign_host::encoder::Fetching) {
    use countersign_host::encoder::Fetching;
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let tenths = std::cell::Cell::new(None::<u64>);
    move |f| match f {
        Fetching::Downloading { received, total } => {
            let mb = |b: u64| b / 1_000_000;
            let line = match total {
                Some(t) => format!("downloading the signal encoder's base: {} of {} MB", mb(received), mb(t)),
                None => format!("downloading the signal encoder's base: {} MB", mb(received)),
            };
            let tenth = total.filter(|t| *t > 0).map_or(mb(received) / 10, |t| received * 10 / t);
            if terminal {
                eprint!("\r{line}");
            } else if tenths.get() != Some(tenth) {
                tenths.set(Some(tenth));
                eprintln!("{line}");
            }
        }
        Fetching::Checking => {
            if terminal {
                eprintln!();
            }
            eprintln!("checking each file against its pinned SHA-256");
        }
        Fetching::Loading => {}
    }
}

/// Progress of long work on stderr, `(done, of)`: a line that updates itself on a
/// terminal, else a line per tenth of the work.
pub fn progress(what: &'static str) -> impl FnMut(usize, usize) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let mut last_tenth = None;
    move |done, of| {
        let line = format!("{what} {done} of {of}");
        if terminal {
            eprint!("\r{line}");
            if done == of {
                eprintln!();
            }
        } else {
            let tenth = (done * 10).checked_div(of).unwrap_or(10);
            if last_tenth != Some(tenth) {
                last_tenth = Some(tenth);
                eprintln!("{line}");
            }
        }
    }
}

pub fn fetched(fetched: &countersign_host::encoder::Fetched) {
    if fetched.downloaded == 0 {
        println!("the signal encoder's base is in {} already: nothing downloaded", fetched.dir.display());
    } else {
        println!(
            "the signal encoder's base is in {} ({} MB downloaded, each file checked)",
            fetched.dir.display(),
            fetched.downloaded / 1_000_000
        );
    }
}

pub fn names(names: &[String], none: &str) {
    if names.is_empty() {
        println!("{none}");
    }
    for n in names {
        println!("{n}");
    }
}

pub fn events(events: &[LoggedEvent]) {
    for e in events {
        println!("{:>6}  {}  {:<16} {:<18} {}", e.seq, e.at, e.kind(), e.actor, e.case_id.as_deref().unwrap_or("-"));
    }
}

pub fn timeline(events: &[LoggedEvent]) {
    for e in events {
        println!("{:>6}  {}  {:<16} by {}", e.seq, e.at, e.kind(), e.actor);
        println!("        {}", e.summary());
    }
}

pub fn kb_index(report: &KbIndexReport) {
    println!(
        "{}: {} articles indexed ({} added, {} updated, {} removed, {} unchanged, {} failed) in {} ms",
        report.dir.display(),
        report.articles,
        report.added,
        report.updated,
        report.removed,
        report.unchanged,
        report.failed,
        report.elapsed_ms
    );
}

pub fn kb_hits(query: &str, hits: &[KbHit]) {
    if hits.is_empty() {
        println!("no passage matches {query:?}");
        return;
    }
    println!("{:>3}  {:>6}  {:<44} {:>3}  heading", "#", "score", "article#anchor", "v");
    for (i, h) in hits.iter().enumerate() {
        let target = format!("{}#{}", h.article_id, h.anchor);
        println!("{:>3}  {:>6.2}  {target:<44} {:>3}  {}", i + 1, h.score, h.version, h.heading);
        println!("{:>13}{}", "", h.snippet.split_whitespace().collect::<Vec<_>>().join(" "));
    }
}

pub fn article(article: &KbArticle) {
    println!("{} v{} — {}", article.id, article.version, article.title);
    println!("owner {} · tags {} · {}", article.owner, article.tags.join(", "), article.path);
    for p in &article.passages {
        println!();
        println!("## {}  (#{})", p.heading, p.anchor);
        println!();
        println!("{}", p.text);
    }
}

pub fn policy(path: &std::path::Path, s: &countersign_engine::PolicySummary) {
    println!(
        "{}: ok — {} v{} ({}), {} actions, {} rules, {} signals, {} reply rules",
        path.display(),
        s.id,
        s.version,
        s.hash,
        s.actions,
        s.rules,
        s.signals,
        s.reply_rules
    );
}

pub fn export(summary: &countersign_engine::ExportSummary, checkpoints: &CheckpointReport) {
    println!(
        "exported {} events to {} (head {}); check it with: countersign log verify --bundle {1} or python3 {1}/verify.py",
        summary.manifest.count,
        summary.dir.display(),
        summary.manifest.head.to_hex()
    );
    crate::admin::print_checkpoints(checkpoints);
}

pub fn synced(reports: &[countersign_engine::intake::SyncReport]) {
    if reports.is_empty() {
        println!("no sources: add [[sources]] to the workspace");
    }
    for r in reports {
        if let Some(error) = &r.error {
            println!("{}: not synced: {error}", r.source);
            continue;
        }
        println!(
            "{}: {} new, {} updated ({} by the customer, {} planned again), {} unchanged, {} gone — {} page(s){}",
            r.source,
            r.new_cases,
            r.updated,
            r.customer_wrote,
            r.replanned,
            r.unchanged,
            r.gone,
            r.pages,
            if r.more { "; more waiting: sync again" } else { "" }
        );
    }
}

pub fn inbox(items: &[countersign_engine::views::InboxItem]) {
    for i in items {
        let state = match (i.opened, i.replied) {
            (_, true) => "replied",
            (true, false) => "planned",
            (false, false) => "new",
        };
        let one_line = i.last_message.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut text: String = one_line.chars().take(70).collect();
        if one_line.chars().count() > 70 {
            text.push('…');
        }
        let flags = if i.handoff { format!(" [handoff: {}]", i.signals.join(", ")) } else { String::new() };
        let waiting = if i.waiting > 0 { format!(" · {} waiting", i.waiting) } else { String::new() };
        println!("{:<28} {:<9} {:<8}{waiting}{flags}  {text}", i.case_id, i.channel, state);
    }
}

pub fn case_view(v: &countersign_engine::views::CaseView) {
    println!("{} · {} on {} · plan {} ({}, {})", v.case_id, v.channel, v.store, v.plan_id, v.intent, v.planner);
    for s in &v.steps {
        println!(
            "  {:<4} {:<28} {:<10} {}",
            s.step_id,
            s.action,
            countersign_engine::views::snake(&s.decision),
            s.state.as_deref().unwrap_or("-")
        );
    }
    if let Some(r) = &v.reply {
        match &r.sent {
            Some(sent) => {
                let at = sent.message_id.as_deref().map(|m| format!(" as message {m}")).unwrap_or_default();
                let why = sent.delivery_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                println!("  reply sent by {} at {} — {}{at}{why}", sent.by, sent.at, sent.delivery);
                println!("    {}", sent.text.replace('\n', "\n    "));
            }
            None => {
                println!("  reply ({}): {}", countersign_engine::views::snake(&r.decision), r.text);
                for c in r.claims.iter().filter(|c| c.status != "supported") {
                    println!("    {} {:?}: {}\n      > {}", c.status, c.claim, c.reason, c.sentence);
                }
            }
        }
    }
}

/// The promises sent replies made, and what a check just did.
pub fn promises(
    all: &[countersign_engine::promises::PromiseStatus],
    sweep: Option<&countersign_engine::promises::PromiseSweep>,
) {
    if let Some(sweep) = sweep {
        println!("checked {} promise(s) whose day has passed", sweep.checked.len());
        for why in &sweep.unreadable {
            println!("  not readable now (tried again next time): {why}");
        }
    }
    if all.is_empty() {
        println!("no promises made in sent replies");
    }
    for p in all {
        println!(
            "{:<14} {:<13} due {}  {:<24} owner {}  (case {}, made {})",
            p.state, p.category, p.due, p.promise_id, p.owner, p.case_id, p.made_at
        );
        println!("    \"{}\"", p.sentence);
        if let Some(why) = &p.reason {
            println!("    {why}");
        }
    }
}

/// How a signed pack stands on simulation, for every line that shows its version.
pub fn simulated(digest: Option<&str>) -> String {
    match digest {
        Some(d) => format!("signed after a simulation ({d})"),
        None => "signed WITHOUT a simulation of its changes".into(),
    }
}

fn amounts(money: &[countersign_core::Money]) -> String {
    money.iter().map(ToString::to_string).collect::<Vec<_>>().join(" + ")
}

fn moves(moves: &[countersign_core::simulate::Move], indent: &str) {
    for m in moves {
        let money = if m.money.is_empty() { String::new() } else { format!("  {}", amounts(&m.money)) };
        let samples: Vec<String> =
            m.samples.iter().map(|s| format!("{} {} {}", s.case_id, s.plan_id, s.step_id)).collect();
        println!(
            "{indent}{:>10} → {:<10} {:>6} step(s){money}   e.g. {}",
            m.from.as_str(),
            m.to.as_str(),
            m.steps,
            samples.join(", ")
        );
    }
}

/// What a draft would change, readable in a minute: the totals, then per action, per
/// rule, the money, the replies and hand-offs.
pub fn simulation(s: &countersign_engine::simulate::Simulated, out: Option<&std::path::Path>) {
    let r = &s.report;
    let since = r.since.map(|t| format!(" since {t}")).unwrap_or_default();
    println!(
        "Draft {} v{} ({}) over {} recorded decision(s){since}, {} step(s): {} would change.",
        r.draft.id, r.draft.version, r.draft.hash, r.decisions, r.steps, r.changed
    );
    for a in r.actions.iter().filter(|a| a.changed > 0) {
        println!("{}: {} of {} step(s) change", a.action, a.changed, a.steps);
        moves(&a.moves, "  ");
    }
    let rules: Vec<_> = r.rules.iter().filter(|x| !x.starts.is_empty() || !x.stops.is_empty()).collect();
    if !rules.is_empty() {
        println!("Rules that start or stop deciding a step:");
        for x in rules {
            println!("  {}: sets {} step(s) now, {} before", x.rule, x.sets_after, x.sets_before);
            moves(&x.starts, "    starts ");
            moves(&x.stops, "    stops  ");
        }
    }
    if !r.money_without_a_human.is_empty() {
        println!("Money that would move without a person: {}", amounts(&r.money_without_a_human));
    }
    if !r.money_no_longer_automatic.is_empty() {
        println!("Money that would no longer move on its own: {}", amounts(&r.money_no_longer_automatic));
    }
    if !r.replies.is_empty() {
        println!("Replies:");
        moves(&r.replies, "  ");
    }
    if r.handoffs_to_person + r.handoffs_from_person > 0 {
        println!("Hand-offs to a person: {} more, {} fewer", r.handoffs_to_person, r.handoffs_from_person);
    }
    if r.without_inputs > 0 {
        println!("Not replayed: {} decision(s) recorded before their inputs were kept", r.without_inputs);
    }
    for u in &r.unreplayable {
        println!("Not replayed: case {} plan {}: {}", u.case_id, u.plan_id, u.reason);
    }
    match out {
        Some(path) => println!(
            "Report {} written to {} (sign with `policy sign --simulation {}`)",
            s.digest,
            path.display(),
            path.display()
        ),
        None => println!("Report {}", s.digest),
    }
}

pub fn autonomy(a: &countersign_engine::autonomy::Autonomy) {
    let Some(s) = &a.settings else {
        println!("Policy {} v{} keeps no bands on record (no [autonomy] table).", a.policy_id, a.policy_version);
        return;
    };
    let (l, t) = (s.loosen, s.tighten);
    println!(
        "Policy {} v{} over {}: approvals sooner than {} s are rubber stamps; reversals count for {} days.",
        a.policy_id, a.policy_version, a.scope, s.review_floor_secs, s.window_days
    );
    println!(
        "Loosen at ≥ {} decisions, ≥ {} % unchanged, ≥ {} people, ≤ {} reversed; tighten at ≥ {} % rejected \
         of ≥ {}, or ≥ {} reversed.",
        l.min_decisions,
        l.min_unchanged_pct,
        l.min_approvers,
        l.max_reversals,
        t.min_rejected_pct,
        t.min_decisions,
        t.min_reversals
    );
    if a.records.is_empty() {
        println!("No band has a decided step yet.");
    }
    for r in &a.records {
        println!(
            "  {} {} on {} at {}: {} counted ({} unchanged, {} edited, {} rejected, {} ran), {} people, {} rubber \
             stamp(s) not counted, {} reversed",
            r.action,
            r.band_label,
            r.channel,
            r.decision,
            r.decisions,
            r.unchanged,
            r.edited,
            r.rejected,
            r.ran,
            r.approvers,
            r.rubber_stamps,
            r.reversals
        );
    }
    if a.proposals.is_empty() {
        println!("No band passes a bar: nothing to propose.");
    }
    for p in &a.proposals {
        let x = &p.proposal;
        println!("Proposal {} ({:?}): {} → {}", x.key, x.direction, x.from, x.to);
        println!("  why: {}", x.why);
        for c in &x.changes {
            println!("  change: {c}");
        }
        for l in &x.leaves {
            println!("  leaves: {l}");
        }
        if let Some(b) = &x.blocked {
            println!("  no draft: {b}");
        }
        if let Some(s) = &p.simulation {
            let r = &s.report;
            println!("  simulated over {} decision(s): {} of {} step(s) would change", r.decisions, r.changed, r.steps);
            if !r.money_without_a_human.is_empty() {
                println!("  money that would move without a person: {}", amounts(&r.money_without_a_human));
            }
            let team = if a.scope == "this desk" { "" } else { " --team" };
            println!("  save it: countersign policy autonomy{team} --save {} --out DIR", x.key);
        }
    }
}

pub fn saved_proposal(s: &countersign_engine::autonomy::SavedProposal) {
    println!("Draft policy (version {}) written to {}", s.version, s.draft_file);
    println!("Simulation report {} written to {}", s.report_digest, s.report_file);
    println!(
        "Read it, put it in the pack source as its policy, raise the pack's version and sign: \
         countersign policy sign SOURCE --out DIR --key KEY --simulation {}",
        s.report_file
    );
}
