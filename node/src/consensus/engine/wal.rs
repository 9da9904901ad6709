//! The write-ahead log: every input of the current height that Malachite acts on is written
//! before it acts, and replayed after a restart, so a validator signs nothing that contradicts
//! what it signed before.

use super::*;

/// What the write-ahead log keeps of a height.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub(super) enum WalEntry {
    Block(ProposedBlock),
    Vote(SignedVote<Ctx>),
    Proposal(SignedProposal<Ctx>),
    ProposedValue(ProposedValue<Ctx>, bool),
    Polka(PolkaCertificate<Ctx>),
    Round(RoundCertificate<Ctx>),
    Timeout { kind: u8, round: Round, millis: u64 },
}

impl WalEntry {
    pub(super) fn of(input: &Input<Ctx>) -> Option<Self> {
        Some(match input {
            Input::Vote(v) => Self::Vote(v.clone()),
            Input::Proposal(p) => Self::Proposal(p.clone()),
            Input::ProposedValue(v, origin) => Self::ProposedValue(v.clone(), origin.is_sync()),
            Input::PolkaCertificate(c) => Self::Polka(c.clone()),
            Input::RoundCertificate(c) => Self::Round(c.clone()),
            Input::TimeoutElapsed(t) => {
                let (kind, millis) = match t.kind {
                    TimeoutKind::Propose => (0, 0),
                    TimeoutKind::Prevote => (1, 0),
                    TimeoutKind::Precommit => (2, 0),
                    TimeoutKind::Rebroadcast => (3, 0),
                    TimeoutKind::FinalizeHeight(d) => (4, d.as_millis() as u64),
                };
                Self::Timeout { kind, round: t.round, millis }
            }
            Input::StartHeight(..) | Input::Propose(_) | Input::SyncValueResponse(_) => {
                return None;
            }
        })
    }

    pub(super) fn input(self) -> Option<Input<Ctx>> {
        Some(match self {
            Self::Block(_) => return None,
            Self::Vote(v) => Input::Vote(v),
            Self::Proposal(p) => Input::Proposal(p),
            Self::ProposedValue(v, sync) => {
                let origin = if sync { ValueOrigin::Sync } else { ValueOrigin::Consensus };
                Input::ProposedValue(v, origin)
            }
            Self::Polka(c) => Input::PolkaCertificate(c),
            Self::Round(c) => Input::RoundCertificate(c),
            Self::Timeout { kind, round, millis } => {
                let kind = match kind {
                    0 => TimeoutKind::Propose,
                    1 => TimeoutKind::Prevote,
                    2 => TimeoutKind::Precommit,
                    3 => TimeoutKind::Rebroadcast,
                    _ => TimeoutKind::FinalizeHeight(Duration::from_millis(millis)),
                };
                Input::TimeoutElapsed(Timeout::new(round, kind))
            }
        })
    }
}

impl Shell {
    pub(super) fn wal(&mut self, height: u64, entry: &WalEntry) {
        if self.replaying {
            return;
        }
        if let Err(e) = self.app.store().wal_append(height, &kinema_chain::encode(entry)) {
            self.fatal.get_or_insert(e);
        }
    }
}
