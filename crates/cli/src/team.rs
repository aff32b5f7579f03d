//! `countersign team …`: setting up a team's plane (admin), enrolling this desktop in it,
//! and where it stands.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use countersign_core::evidence::Verdict;
use countersign_engine::credentials;
use countersign_plane::authority::{Authority, InitOptions, device_transport_key, new_device_transport_key};
use countersign_plane::subjects::Role;

use crate::args::Cli;
use crate::render::out;

#[derive(Subcommand, Debug)]
pub enum TeamCmd {
    /// Set up a team's plane in DIR (admin): its NATS operator and account (seeds in
    /// your OS keyring), the team service's identity, and the server's config
    /// (`nats-server -c DIR/nats-server.conf`).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        /// The address the server listens on; anything but loopback needs TLS.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        #[arg(long, default_value_t = 4222)]
        port: u16,
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// What the team's streams and stores may hold on the server's disk, in all, in
        /// GiB (the server refuses writes past it). The server's disk must have the room.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
        max_disk_gib: Option<u64>,
        /// Each desk's share of that quota for its screenshots and page snapshots, in
        /// MiB (a 64th of the quota when not given; at most a quarter). The evidence
        /// stream, the pauses and the packs have shares of their own.
        #[arg(long, requires = "max_disk_gib", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
        desk_disk_mib: Option<u64>,
    },
    /// This desktop's keys: its transport key (give it to the admin to enrol) and its
    /// device key (the admin lists a lead's on the pack's roster). `--new` makes a new
    /// transport key (for a rotation).
    Key {
        #[arg(long)]
        new: bool,
    },
    /// Enrol a device (admin): sign its transport key with a role, and write the
    /// enrolment file it joins with (no secret in it).
    Enroll {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
        /// agent, lead or admin.
        #[arg(long)]
        role: String,
        /// The device's transport key (`countersign team key` on it).
        #[arg(long)]
        key: String,
        /// The key the device signs its evidence with (`countersign team key` on it):
        /// the team service holds the desk's checkpoints to it from the first one.
        /// Without it, the desk's first checkpoint that verifies pins its key.
        #[arg(long, value_name = "HEX")]
        device_key: Option<String>,
        /// Where to write the enrolment (default: DEVICE.enrollment.toml here).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Set the key a device signs its evidence with (admin; `countersign team key` on it
    /// prints it): a reinstalled device, or a key given wrong at enrolment. A desk the
    /// team holds for it is then released with `countersign-team release`.
    DeviceKey {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
        #[arg(long, value_name = "HEX")]
        device_key: String,
    },
    /// Join this workspace to the team of an enrolment file.
    Join { file: PathBuf },
    /// Revoke a device (admin): the server drops it at once and refuses it from then on.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
    },
    /// Give a device a new transport key (admin; the device made it with `team key --new`):
    /// the old one is revoked.
    Rotate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
        #[arg(long)]
        key: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Issue a device's credentials again, for the key it has, with today's permissions
    /// (admin): its older credentials are refused from now on. A desk joins with the new
    /// enrolment (`team join`); the team service (`--device service`) gets a new
    /// `service.creds`: stop it first, start it after.
    Reissue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Give a team set up with a quota a larger one, and each desk's store a larger
    /// share (admin). The server gets the account's new limits at once; the running team
    /// service gives every stream and store its new share within a lease interval. A
    /// quota only grows: the server's disk must have the room.
    Quota {
        #[arg(long)]
        dir: PathBuf,
        /// The team's new quota, in GiB (at least the one it has).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
        max_disk_gib: u64,
        /// Each desk's new share, in MiB (at least the one it has; kept when not given).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
        desk_disk_mib: Option<u64>,
    },
    /// Send the account's current revocations to the server again (admin).
    Push {
        #[arg(long)]
        dir: PathBuf,
    },
    /// The team's enrolled devices (admin).
    Devices {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Where this desktop stands with its team: connected, current (a fresh lease) or cut off.
    Status,
    /// The team's supervisor steps waiting for a lead (a lead's queue).
    Queue,
    /// Publish a signed policy pack to every desk of the team (the admin's desk): checked
    /// here first; each desk fetches it and runs it from its next start, once it verifies
    /// there too.
    PublishPack {
        dir: PathBuf,
        /// Also trust the public keys in FILE when checking it here.
        #[arg(long, value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Every desk of the team: what it runs (policy, pack) and when it last said so.
    Desks,
    /// The team's evidence as a lead sees it (asked of the team service; only the desks
    /// and tenants the signed pack grants this lead; every view of customer data is
    /// recorded by the team).
    #[command(subcommand)]
    Log(TeamLogCmd),
    /// Answer a request of the queue as this desk's lead (a grant signed with this desk's
    /// key; the first answer wins).
    Answer {
        request_id: String,
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        #[arg(long)]
        reject: bool,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamLogCmd {
    /// Record your verdict on a case an escalation signal handed to a human (a lead): was
    /// the handoff right? Signed with your team key; the newest verdict counts.
    Judge {
        /// The desk (device) whose case it is.
        #[arg(long)]
        desk: String,
        #[arg(long = "case")]
        case_id: String,
        /// A human was needed.
        #[arg(long, conflicts_with = "wrong", required_unless_present = "wrong")]
        right: bool,
        /// The handoff was not needed (a false alarm).
        #[arg(long)]
        wrong: bool,
        #[arg(long)]
        reason: String,
    },
    /// Decided steps across the team, newest first.
    Steps {
        /// Who sat at the desk (operator id).
        #[arg(long)]
        agent: Option<String>,
        /// The desk (its enrolled device name).
        #[arg(long)]
        desk: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// auto, confirm, supervisor, recommend or forbid.
        #[arg(long)]
        decision: Option<String>,
        /// succeeded, failed, unknown, needs_human, settled_applied, settled_not_applied,
        /// rejected, superseded, expired or open.
        #[arg(long)]
        outcome: Option<String>,
        /// The signed pack's version the step was decided under.
        #[arg(long)]
        pack_version: Option<u64>,
        #[arg(long)]
        tenant: Option<String>,
        /// Decided at or after (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Decided before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Rows (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The next page: the cursor the previous page printed.
        #[arg(long)]
        after: Option<String>,
    },
    /// A case's timeline from every desk you may see, each event checked against its hash.
    Case { case_id: String },
    /// Write a case's evidence from the team to FILE (or FOLDER/<case>.team.json).
    Export {
        case_id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// A screenshot or page snapshot an event of the case on DESK names, to FILE.
    Blob {
        desk: String,
        case_id: String,
        hash: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// What the team could not verify on the desks you may see (gaps, forks, bad hashes
    /// or signatures).
    Alerts,
    /// The team's own record, newest first: who saw what (each recorded view of customer
    /// data) and what retention deleted. For a lead granted every desk and tenant.
    Audit {
        /// Rows of each (at most 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// How the team's steps went: per action, per agent and per week.
    Metrics {
        /// Decided at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Decided before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
}

fn team_log(cli: &Cli, cmd: &TeamLogCmd) -> anyhow::Result<ExitCode> {
    let opened = crate::open(cli)?;
    let engine = &opened.engine;
    match cmd {
        TeamLogCmd::Steps {
            agent,
            desk,
            action,
            decision,
            outcome,
            pack_version,
            tenant,
            since,
            until,
            limit,
            after,
        } => {
            let filter = countersign_core::teamview::StepFilter {
                agent: agent.clone(),
                desk: desk.clone(),
                action: action.clone(),
                decision: decision.clone(),
                outcome: outcome.clone(),
                pack_version: *pack_version,
                tenant: tenant.clone(),
                since: since.clone(),
                until: until.clone(),
                after: after.clone(),
                limit: Some(*limit),
            };
            out(cli.json, &engine.team_steps(filter)?, |page| {
                if page.rows.is_empty() {
                    println!("no decided step of the team matches");
                }
                for r in &page.rows {
                    let rejected = r.verdict.as_deref() == Some("rejected");
                    let ended = r.outcome.as_deref().unwrap_or(if rejected { "rejected" } else { "open" });
                    let pack = r.pack_version.map_or("dev".to_string(), |v| format!("v{v}"));
                    println!(
                        "{}  {:<14} {:<12} {:<18} {:<10} {:<12} {:<5} case {}",
                        r.decided_at,
                        r.desk,
                        r.agent,
                        r.action,
                        r.decision,
                        ended,
                        pack,
                        r.case_id.as_deref().unwrap_or("-")
                    );
                }
                if let Some(next) = &page.next {
                    println!("more: --after {next}");
                }
            })
        }
        TeamLogCmd::Case { case_id } => out(cli.json, &engine.team_case(case_id)?, |c| {
            for e in &c.events {
                println!(
                    "{:<14} {:>6}  {}  {:<16} by {}",
                    e.desk, e.event.seq, e.event.at, e.event.kind, e.event.actor
                );
                println!("        {}", e.summary);
            }
        }),
        TeamLogCmd::Export { case_id, out: to } => out(cli.json, &engine.team_export(case_id, to)?, |x| {
            println!("{} events of case {case_id} from {} written to {}", x.events, x.desks.join(", "), x.path)
        }),
        TeamLogCmd::Blob { desk, case_id, hash, out: file } => {
            let (media_type, data) = engine.team_blob(desk, case_id, hash)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(file)
                .with_context(|| format!("{}: give a new file", file.display()))?;
            std::io::Write::write_all(&mut f, &data).with_context(|| format!("writing {}", file.display()))?;
            let body = serde_json::json!({"hash": hash, "media_type": media_type, "bytes": data.len(), "out": file});
            out(cli.json, &body, |_| {
                println!("{hash} ({media_type}, {} bytes) written to {}", data.len(), file.display())
            })
        }
        TeamLogCmd::Metrics { since, until } => {
            out(cli.json, &engine.team_metrics(since.clone(), until.clone())?, |m| {
                println!(
                    "{} cases · {} escalated · {} overrides · unknown outcomes: {} open, {} settled applied, {} settled not \
                 applied",
                    m.cases,
                    m.escalations,
                    m.overrides,
                    m.unknown.open,
                    m.unknown.settled_applied,
                    m.unknown.settled_not_applied
                );
                let v = &m.escalation_verdicts;
                println!(
                    "escalations judged by a lead: {} right, {} wrong, {} not judged",
                    v.right, v.wrong, v.unjudged
                );
                println!(
                    "{:<24} {:>6} {:>9} {:>8} {:>9} {:>7} {:>11} {:>6}",
                    "", "auto", "confirmed", "rejected", "forbidden", "waiting", "recommended", "edited"
                );
                for (title, rows) in
                    [("per action", &m.per_action), ("per agent", &m.per_agent), ("per week", &m.per_week)]
                {
                    println!("{title}:");
                    for c in rows.iter().chain(std::iter::once(&m.totals).filter(|_| title == "per week")) {
                        println!(
                            "  {:<22} {:>6} {:>9} {:>8} {:>9} {:>7} {:>11} {:>6}",
                            c.label,
                            c.auto_run,
                            c.confirmed,
                            c.rejected,
                            c.forbidden,
                            c.waiting,
                            c.recommended,
                            c.edited
                        );
                    }
                }
                println!(
                    "promises in replies: {:<10} {:>5} {:>5} {:>7} {:>14} {:>8} {:>5}",
                    "", "made", "kept", "broken", "not checkable", "overdue", "open"
                );
                for c in m.promises_per_agent.iter().chain(&m.promises_per_week).chain(std::iter::once(&m.promises)) {
                    println!(
                        "  {:<29} {:>5} {:>5} {:>7} {:>14} {:>8} {:>5}",
                        c.label, c.made, c.kept, c.broken, c.not_checkable, c.overdue, c.open
                    );
                }
                println!("rules: {:<33} {:>6} {:>8} {:>11}", "", "fired", "decided", "overridden");
                for r in &m.rules {
                    println!("  {:<38} {:>6} {:>8} {:>11}", r.rule, r.fired, r.decided, r.overridden);
                }
                if !m.rules_never_fired.is_empty() {
                    println!("never fired: {}", m.rules_never_fired.join(", "));
                }
            })
        }
        TeamLogCmd::Judge { desk, case_id, right, wrong: _, reason } => {
            engine.team_judge(desk, case_id, *right, reason)?;
            out(cli.json, &serde_json::json!({"desk": desk, "case_id": case_id, "right": right}), |_| {
                println!(
                    "recorded: the escalation of {case_id} on {desk} was {}",
                    if *right { "right" } else { "wrong" }
                );
            })
        }
        TeamLogCmd::Audit { limit } => out(cli.json, &engine.team_audit(Some(*limit))?, |a| {
            println!("views of customer data ({}):", a.views.len());
            for v in &a.views {
                println!("  {}  {} at {}: {} ({} shown) {}", v.at, v.by, v.desk, v.kind, v.shown, v.cases.join(", "));
            }
            println!("deleted by retention ({}):", a.deletions.len());
            for d in &a.deletions {
                println!(
                    "  {}  {} on {} ({}): {} events, {} days under {}",
                    d.at, d.case_id, d.desk, d.tenant, d.events, d.days, d.pack
                );
            }
        }),
        TeamLogCmd::Alerts => out(cli.json, &engine.team_alerts()?, |alerts| {
            if alerts.is_empty() {
                println!("every desk you may see verifies");
            }
            for a in alerts {
                println!("{}  {} at event {}: {} ({})", a.raised_at, a.desk, a.seq, a.kind, a.detail);
            }
        }),
    }
}

/// Success, or exit 1 saying that `what` did not reach the server yet.
fn pushed_or_not(not_pushed: Option<countersign_plane::PlaneError>, what: &str) -> anyhow::Result<ExitCode> {
    match not_pushed {
        None => Ok(ExitCode::SUCCESS),
        Some(err) => {
            eprintln!("{what} did not reach the server ({err}); run `team push` once it is up");
            Ok(ExitCode::from(1))
        }
    }
}

fn write_enrollment(
    out_file: Option<&PathBuf>,
    e: &countersign_plane::authority::Enrollment,
) -> anyhow::Result<PathBuf> {
    let path = out_file.cloned().unwrap_or_else(|| PathBuf::from(format!("{}.enrollment.toml", e.device)));
    let text = toml::to_string_pretty(e).context("writing the enrolment")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn team(cli: &Cli, cmd: &TeamCmd) -> anyhow::Result<ExitCode> {
    let keyring = credentials::keyring();
    match cmd {
        TeamCmd::Init { dir, name, host, port, tls_cert, tls_key, max_disk_gib, desk_disk_mib } => {
            let tls = tls_cert.clone().zip(tls_key.clone());
            let options = InitOptions {
                name: name.clone(),
                host: *host,
                port: *port,
                tls,
                max_disk_bytes: max_disk_gib.map(|g| g << 30),
                desk_disk_bytes: desk_disk_mib.map(|m| m << 20),
            };
            let a = Authority::init(dir, &options, keyring)?;
            out(cli.json, &a.file, |f| {
                println!("team {} set up in {}", f.name, dir.display());
                println!("  server:   nats-server -c {}", dir.join("nats-server.conf").display());
                println!("  service:  countersign-team serve --dir {}", dir.display());
                println!("  desktops: reach {}; enrol each with `countersign team enroll`", f.url);
            })
        }
        TeamCmd::Key { new } => {
            let transport = if *new { new_device_transport_key(&keyring)? } else { device_transport_key(&keyring)? };
            let device = countersign_engine::device::device_key(&keyring)?.public("").to_hex();
            let body = serde_json::json!({"transport_key": transport.public_key(), "device_key": device});
            out(cli.json, &body, |_| {
                println!("transport key: {}   (for `team enroll --key`)", transport.public_key());
                println!(
                    "device key:    {device}   (for `team enroll --device-key`; a lead's goes on the pack's roster as `key`)"
                );
            })
        }
        TeamCmd::Enroll { dir, device, role, key, device_key, out: out_file } => {
            let role = Role::parse(role)?;
            if role == Role::Service {
                anyhow::bail!("the team service is enrolled by `team init`, not by hand");
            }
            let e = Authority::open(dir, keyring)?.enroll_with(device, role, key, device_key.as_deref())?;
            let path = write_enrollment(out_file.as_ref(), &e)?;
            out(cli.json, &e, |e| println!("enrolled {} as {}: give it {}", e.device, e.role.as_str(), path.display()))
        }
        TeamCmd::DeviceKey { dir, device, device_key } => {
            let before = Authority::open(dir, keyring)?.set_device_key(device, device_key)?;
            let done = serde_json::json!({"device": device, "device_key": device_key, "before": before});
            out(cli.json, &done, |_| match &before {
                Some(b) => println!("{device}'s evidence key is now {device_key} (it was {b})"),
                None => println!("{device}'s evidence key is now {device_key}"),
            })
        }
        TeamCmd::Join { file } => {
            let ws =
                countersign_engine::Workspace::load(&cli.workspace.clone().unwrap_or_else(crate::default_workspace))?;
            let data_dir = countersign_host::DataRoot::resolve(cli.data_dir.clone())?.workspace_dir(&ws.id);
            let e = countersign_host::team::join(&data_dir, file)?;
            out(cli.json, &e, |e| println!("joined team {} as {} ({}) on {}", e.team, e.device, e.role.as_str(), e.url))
        }
        TeamCmd::Revoke { dir, device } => {
            let keys = Authority::open(dir, keyring)?.revoke(device)?;
            out(cli.json, &keys, |k| println!("revoked {device} ({}): the server drops it now", k.join(", ")))
        }
        TeamCmd::Rotate { dir, device, key, out: out_file } => {
            let (e, not_pushed) = Authority::open(dir, keyring)?.rotate(device, key)?;
            let path = write_enrollment(out_file.as_ref(), &e)?;
            out(cli.json, &e, |e| println!("{} has a new key: give it {}", e.device, path.display()))?;
            pushed_or_not(not_pushed, "the old key's revocation")
        }
        TeamCmd::Reissue { dir, device, out: out_file } => {
            if device == "service" && out_file.is_some() {
                anyhow::bail!("the team service's credentials go to service.creds in the team folder, not to --out");
            }
            let (e, not_pushed) = Authority::open(dir, keyring)?.reissue(device)?;
            if e.role == countersign_plane::subjects::Role::Service {
                let creds = dir.join("service.creds");
                out(cli.json, &e, |_| {
                    println!("the team service's credentials are new in {}: restart it", creds.display())
                })?;
            } else {
                let path = write_enrollment(out_file.as_ref(), &e)?;
                out(cli.json, &e, |e| {
                    println!("{} has new credentials: give it {} to join", e.device, path.display())
                })?;
            }
            pushed_or_not(not_pushed, "the older credentials' revocation")
        }
        TeamCmd::Quota { dir, max_disk_gib, desk_disk_mib } => {
            let (q, not_pushed) =
                Authority::open(dir, keyring)?.grow_quota(max_disk_gib << 30, desk_disk_mib.map(|m| m << 20))?;
            let shares = serde_json::json!({
                "max_disk_bytes": q.team, "desk_disk_bytes": q.desk_blobs, "evidence_bytes": q.evidence,
                "control_bytes": q.control, "desks": q.desks(),
            });
            out(cli.json, &shares, |_| {
                println!(
                    "quota {} MiB: evidence {} MiB, pauses and leases {} MiB, each desk's store {} MiB (room for {} \
                     desks); the team service applies it within a lease interval",
                    q.team >> 20,
                    q.evidence >> 20,
                    q.control >> 20,
                    q.desk_blobs >> 20,
                    q.desks()
                )
            })?;
            pushed_or_not(not_pushed, "the account's new limits")
        }
        TeamCmd::Push { dir } => {
            Authority::open(dir, keyring)?.push()?;
            out(cli.json, &serde_json::json!({"pushed": true}), |_| {
                println!("the server has the account's revocations")
            })
        }
        TeamCmd::Devices { dir } => {
            let a = Authority::open(dir, keyring)?;
            out(cli.json, &a.file.devices, |devices| {
                for d in devices {
                    let state = d.revoked_at.map_or("live".to_string(), |t| format!("revoked {t}"));
                    println!("{:<20} {:<8} {}  {state}", d.name, d.role.as_str(), d.key);
                }
            })
        }
        TeamCmd::Queue => {
            let opened = crate::open(cli)?;
            out(cli.json, &opened.engine.team_queue_views(), |queue| {
                if queue.is_empty() {
                    println!("no step of the team waits for a lead");
                }
                for r in queue {
                    println!(
                        "{}  {} {} on {} (case {}, by {})",
                        r.request_id,
                        r.action,
                        r.params.join(", "),
                        r.device,
                        r.case_id,
                        r.requested_by
                    );
                    println!("    {}", r.context);
                    for why in &r.reasons {
                        println!("    - {why}");
                    }
                }
            })
        }
        TeamCmd::Answer { request_id, approve, reject: _, reason } => {
            let opened = crate::open(cli)?;
            let verdict = if *approve { Verdict::Approved } else { Verdict::Rejected };
            opened.engine.team_answer(request_id, verdict, reason)?;
            out(cli.json, &serde_json::json!({"answered": request_id, "approved": approve}), |_| {
                println!("answered {request_id}: {}", if *approve { "approved" } else { "rejected" });
            })
        }
        TeamCmd::PublishPack { dir, trust } => {
            let mut trusted = countersign_engine::keys::TrustedKeys::bundled();
            for file in trust {
                trusted.add_file(file)?;
            }
            let info = countersign_engine::pack::verify_pack(dir, &trusted).map_err(|r| anyhow::anyhow!("{r}"))?.info;
            let opened = crate::open(cli)?;
            let link = opened.team.as_ref().context("this workspace is in no team (`countersign team join`)")?;
            let by = opened.engine.operator().id.clone();
            let announced =
                link.publish_pack(dir, info.version, &info.digest, &by).map_err(|e| anyhow::anyhow!("{e}"))?;
            out(
                cli.json,
                &serde_json::json!({"version": announced.version, "digest": announced.digest, "object": announced.object}),
                |_| {
                    println!(
                        "published pack {} v{} ({}): every desk runs it from its next start",
                        info.id, info.version, info.digest
                    );
                },
            )
        }
        TeamCmd::Log(cmd) => team_log(cli, cmd),
        TeamCmd::Desks => {
            let opened = crate::open(cli)?;
            out(cli.json, &opened.engine.team_desks(), |desks| {
                for d in desks {
                    let pack = d.pack_version.map_or("dev mode".to_string(), |v| format!("pack v{v}"));
                    println!(
                        "{:<20} {:<10} {:<14} policy {} v{} ({pack})  heard {}",
                        d.device,
                        d.role,
                        d.operator,
                        d.policy_id,
                        d.policy_version,
                        d.heard_at.as_deref().unwrap_or("-")
                    );
                }
            })
        }
        TeamCmd::Status => {
            let opened = crate::open(cli)?;
            let status = opened.engine.team_status();
            out(cli.json, &status, |s| match s {
                None => println!("solo: this workspace is in no team"),
                Some(s) => {
                    let link = if s.connected { "connected" } else { "not connected" };
                    println!("team {} as {} ({}): {link}", s.team, s.device, s.role);
                    match &s.cut_off {
                        None => println!("current: last lease {}", s.last_lease.as_deref().unwrap_or("-")),
                        Some(why) => println!("CUT OFF: {why}"),
                    }
                }
            })
        }
    }
}
