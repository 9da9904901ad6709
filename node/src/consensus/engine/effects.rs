//! Malachite's effects answered: signing and verifying, proposing, restreaming, deciding and
//! finalizing, and the certificates between Malachite's form and the chain's.

use super::*;

impl Shell {
    /// Answers one of Malachite's effects.
    pub(super) fn handle(&mut self, effect: Effect<Ctx>) -> Result<mcc::Resume<Ctx>, Error> {
        let ctx = &self.ctx;
        Ok(match effect {
            Effect::CancelAllTimeouts(r) => {
                self.out.push(Output::CancelAll);
                r.resume_with(())
            }
            Effect::CancelTimeout(timeout, r) => {
                self.out.push(Output::Cancel(Timer(TimerKind::Step(timeout))));
                r.resume_with(())
            }
            Effect::ScheduleTimeout(timeout, r) => {
                let after = self.timeouts.duration_for(timeout);
                self.out.push(Output::Schedule(Timer(TimerKind::Step(timeout)), after));
                r.resume_with(())
            }
            Effect::StartRound(height, round, proposer, _role, r) => {
                debug!(validator = %self.address, %height, %round, %proposer, "round starts");
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(message, r) => {
                self.broadcast(&Message::Consensus(message));
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(message, r) => {
                self.broadcast(&Message::Liveness(message));
                r.resume_with(())
            }
            Effect::RepublishVote(vote, r) => {
                self.broadcast(&Message::Liveness(LivenessMsg::Vote(vote)));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(certificate, r) => {
                let message = LivenessMsg::SkipRoundCertificate(certificate);
                self.broadcast(&Message::Liveness(message));
                r.resume_with(())
            }
            Effect::GetValue(height, round, _timeout, r) => {
                self.to_propose = Some((height, round));
                self.batch_due = false;
                self.empty_block_due = false;
                if round == Round::ZERO && !self.own.contains_key(&round) {
                    let batch = self.config.batch_window;
                    self.out.push(Output::Schedule(Timer(TimerKind::Batch), batch));
                    let wait = self.config.empty_block_interval;
                    self.out.push(Output::Schedule(Timer(TimerKind::EmptyBlock), wait));
                }
                r.resume_with(())
            }
            Effect::RestreamProposal(_height, round, valid_round, proposer, block, r) => {
                if let Some(executed) = self.blocks.get(&block)
                    && proposer.0 == self.address
                {
                    let block = executed.block.clone();
                    let chain_id = self.app.chain_id().to_owned();
                    let key = &self.config.key;
                    let proposed = ProposedBlock::signed(&chain_id, round, valid_round, block, key);
                    self.broadcast(&Message::Block(proposed));
                }
                r.resume_with(())
            }
            // Kinema's own block sync answers lagging validators; Malachite's value sync is
            // never fed, so these never come.
            Effect::CertVerifiedSyncValue(_, _, r) | Effect::CertRejectedSyncValue(_, _, _, r) => {
                r.resume_with(())
            }
            Effect::Decide(certificate, _extensions, r) => {
                let certificate = chain_certificate(&certificate);
                match self.blocks.remove(&certificate.block) {
                    Some(executed) => {
                        if let Err(e) = self.commit(executed, &certificate, true) {
                            self.fatal.get_or_insert(e);
                        }
                    }
                    None => {
                        debug!(validator = %self.address, "decided block {} not received yet", certificate.block)
                    }
                }
                r.resume_with(())
            }
            Effect::Finalize(certificate, _extensions, evidence, r) => {
                self.report(evidence.proposals.iter(), |ctx, first, second, key| {
                    Evidence::DoubleProposal {
                        first: ctx.chain_signed_proposal(first, key),
                        second: ctx.chain_signed_proposal(second, key),
                    }
                });
                self.report(evidence.votes.iter(), |ctx, first, second, key| {
                    Evidence::DoubleSign {
                        first: ctx.chain_signed_vote(first, key),
                        second: ctx.chain_signed_vote(second, key),
                    }
                });
                self.finalized = Some(certificate.height);
                r.resume_with(())
            }
            Effect::SignVote(vote, r) => r.resume_with(ctx.sign_vote(vote, &self.config.key)),
            Effect::SignProposal(proposal, r) => {
                r.resume_with(ctx.sign_proposal(proposal, &self.config.key))
            }
            Effect::VerifySignature(signed, key, r) => {
                let valid = match &signed.message {
                    ConsensusMsg::Vote(vote) => ctx.check_vote(vote, &signed.signature, &key),
                    ConsensusMsg::Proposal(proposal) => {
                        ctx.check_proposal(proposal, &signed.signature, &key)
                    }
                };
                r.resume_with(valid)
            }
            Effect::VerifyCommitCertificate(certificate, validators, thresholds, r) => {
                let votes = commit_votes(ctx, &certificate);
                r.resume_with(check_votes(ctx, votes, &validators, thresholds.quorum))
            }
            Effect::VerifyExtendedCommitCertificate(certificate, validators, thresholds, _, r) => {
                let votes = commit_votes(ctx, &certificate.trim_vote_extensions());
                r.resume_with(check_votes(ctx, votes, &validators, thresholds.quorum))
            }
            Effect::VerifyPolkaCertificate(certificate, validators, thresholds, r) => {
                let votes = certificate.votes(ctx).collect();
                r.resume_with(check_votes(ctx, votes, &validators, thresholds.quorum))
            }
            Effect::VerifyRoundCertificate(certificate, validators, thresholds, r) => {
                let needed = match certificate.cert_type {
                    RoundCertificateType::Skip => thresholds.honest,
                    RoundCertificateType::Precommit => thresholds.quorum,
                };
                let votes = certificate.votes(ctx).collect();
                r.resume_with(check_votes(ctx, votes, &validators, needed))
            }
            Effect::WalAppend(height, input, r) => {
                if let Some(entry) = WalEntry::of(&input) {
                    self.wal(height.0, &entry);
                }
                r.resume_with(())
            }
            Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
        })
    }
}

/// The chain's certificate of a Malachite decision.
pub(super) fn chain_certificate(certificate: &CommitCertificate<Ctx>) -> Certificate {
    Certificate {
        height: certificate.height.0,
        round: certificate.round.as_u32().unwrap_or(0),
        block: certificate.value_id,
        signatures: certificate
            .commit_signatures
            .iter()
            .map(|s| CommitSignature { validator: s.address.0, signature: s.signature })
            .collect(),
    }
}

pub(super) fn commit_votes(
    ctx: &Ctx,
    certificate: &CommitCertificate<Ctx>,
) -> Vec<SignedVote<Ctx>> {
    use malachitebft_core_types::Context as _;
    certificate
        .commit_signatures
        .iter()
        .map(|s| {
            let vote = ctx.new_precommit(
                certificate.height,
                certificate.round,
                NilOrVal::Val(certificate.value_id),
                s.address,
            );
            SignedVote::new(vote, s.signature)
        })
        .collect()
}

/// Checks that `votes` are validly signed by distinct validators holding more than `needed`
/// of the power.
pub(super) fn check_votes(
    ctx: &Ctx,
    votes: Vec<SignedVote<Ctx>>,
    validators: &Validators,
    needed: ThresholdParam,
) -> Result<(), CertificateError<Ctx>> {
    use malachitebft_core_types::ValidatorSet as _;
    let mut seen = BTreeSet::new();
    let mut signed = 0u64;
    for vote in votes {
        let address = vote.message.validator;
        let Some(member) = validators.member(&address) else {
            return Err(CertificateError::UnknownValidator(address));
        };
        if !seen.insert(address) {
            return Err(CertificateError::DuplicateVote(address));
        }
        if !ctx.check_vote(&vote.message, &vote.signature, &member.public_key) {
            return Err(CertificateError::VerificationError(None));
        }
        signed += member.power;
    }
    let total = validators.total_voting_power();
    if !needed.is_met(signed, total) {
        let expected = needed.min_expected(total);
        return Err(CertificateError::NotEnoughVotingPower { signed, total, expected });
    }
    Ok(())
}
