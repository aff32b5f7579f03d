//! How a team's disk quota is shared out, so that no desk can use up what the pauses need.
//!
//! The server checks a write against everything the account holds: without shares, one
//! desk flooding its blob store or its evidence subject would fill the quota, and then
//! no lead could write a pause. With a quota, the account requires every stream to
//! declare its size (`max_bytes_required`) and caps any one stream at a quarter of the
//! quota; the server refuses a new stream whose size does not fit beside the others'.
//! Every stream then stays within its own size, so the control bucket (pauses, leases,
//! answers) keeps the room it was given, whatever fills elsewhere. Each desk's blob store
//! has its own share (the team service makes it, with that size); the evidence stream,
//! one for the team, has a quarter and refuses (never drops) past it: a refused event
//! stays in the desk's outbox.

/// The shares of one team's disk, in bytes (each a stream's `max_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The team's quota: everything on the server, together.
    pub team: u64,
    /// The control bucket: pauses, the lease, answers, each desk's report and witness.
    pub control: u64,
    /// The supervisor requests waiting on a lead.
    pub requests: u64,
    /// The signed packs the admin publishes.
    pub packs: u64,
    /// Every desk's evidence not yet in the team's database.
    pub evidence: u64,
    /// Each desk's own blob store (screenshots, page snapshots).
    pub desk_blobs: u64,
    /// The most any one stream may be given (the server's cap).
    pub per_stream: u64,
}

/// A desk's blob store without a share given at `team init`: this part of the quota.
const DEFAULT_DESKS: u64 = 64;

impl Quota {
    /// The shares of `team` bytes, each desk's blob store `desk` bytes (a 64th of the
    /// quota when not given). `None` without a quota: nothing is shared out.
    pub fn of(team: Option<u64>, desk: Option<u64>) -> Option<Quota> {
        let team = team?;
        Some(Quota {
            team,
            control: team / 16,
            requests: team / 16,
            packs: team / 16,
            evidence: team / 4,
            desk_blobs: desk.unwrap_or(team / DEFAULT_DESKS),
            per_stream: team / 4,
        })
    }

    /// How many desks' blob stores fit beside the team's own streams.
    pub fn desks(&self) -> u64 {
        let own = self.control + self.requests + self.packs + self.evidence;
        self.team.saturating_sub(own) / self.desk_blobs.max(1)
    }

    /// A desk's share `desk` checked against a quota of `team` bytes.
    pub fn check(team: u64, desk: u64) -> Result<(), String> {
        let quota = Quota::of(Some(team), Some(desk)).ok_or("no quota")?;
        if desk < 64 * 1024 {
            return Err(format!(
                "a desk's share of {desk} bytes is too small for one screenshot: give at least 64 KiB"
            ));
        }
        if desk > quota.per_stream {
            return Err(format!(
                "a desk's share ({desk} bytes) may be at most a quarter of the team's quota ({} bytes)",
                quota.per_stream
            ));
        }
        Ok(())
    }
}

/// A size for a stream's config: the share, or unlimited (`-1`) without a quota.
pub fn max_bytes(share: Option<u64>) -> i64 {
    share.and_then(|b| i64::try_from(b).ok()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_fit_in_the_quota_with_room_for_the_desks() {
        let q = Quota::of(Some(64 << 30), None).expect("a quota");
        assert_eq!(q.desk_blobs, 1 << 30);
        assert_eq!(q.control + q.requests + q.packs + q.evidence, (64u64 << 30) * 7 / 16);
        assert_eq!(q.desks(), 36, "9/16 of the quota left, a 64th each");
        let q = Quota::of(Some(100 << 30), Some(100 << 20)).expect("a quota");
        assert_eq!(q.desks(), 576);
        assert!(Quota::of(None, Some(1 << 20)).is_none());
        assert_eq!(max_bytes(None), -1);
        assert_eq!(max_bytes(Some(5)), 5);
    }

    #[test]
    fn a_desks_share_must_hold_a_screenshot_and_stay_within_a_quarter() {
        assert!(Quota::check(1 << 30, 1 << 20).is_ok());
        assert!(Quota::check(1 << 30, 1 << 28).is_ok());
        let big = Quota::check(1 << 30, (1 << 28) + 1).expect_err("over a quarter");
        assert!(big.contains("at most a quarter"), "{big}");
        let small = Quota::check(1 << 30, 1000).expect_err("too small");
        assert!(small.contains("at least 64 KiB"), "{small}");
    }
}
