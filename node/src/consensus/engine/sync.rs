//! Block sync: a node behind a peer's announced head asks that peer for the committed blocks
//! after its own head, checks each certificate, re-executes and commits; a peer that leaves a
//! request unanswered is passed over for the next, and one that answers with a certificate that
//! does not verify is penalized and passed over at once.

use super::*;

/// What became of one synced block.
enum Synced {
    Committed,
    /// It does not follow the head (an answer to an earlier request, or one already taken).
    NotNext,
    /// It follows the head but its certificate does not verify: only a liar sends that.
    BadCertificate,
}

impl MalachiteEngine {
    /// Committed blocks `from` sent with their certificates, in height order: each that
    /// follows the head and whose certificate verifies is executed and committed. A bad
    /// certificate ends the answer, and `from` is penalized and passed over.
    pub(super) fn on_synced(
        &mut self,
        from: Peer,
        blocks: Vec<(Block, Certificate)>,
    ) -> Result<(), Error> {
        let (mut progress, mut lied) = (false, false);
        for (block, certificate) in blocks {
            match self.sync_one(block, certificate)? {
                Synced::Committed => progress = true,
                Synced::NotNext => break,
                Synced::BadCertificate => {
                    self.shell.out.push(Output::Penalize(from));
                    // Not counted on again (unless it announces a head again).
                    self.shell.ahead.remove(&from);
                    lied = true;
                    break;
                }
            }
        }
        // The next blocks, or the liar's request passed over to the next peer in turn.
        if progress || lied {
            self.shell.request_blocks();
        }
        Ok(())
    }

    /// Commits one synced block unless it does not follow the head or its certificate does not
    /// verify.
    fn sync_one(&mut self, block: Block, certificate: Certificate) -> Result<Synced, Error> {
        let head = self.shell.app.head()?;
        if block.header.height != head.height + 1 {
            return Ok(Synced::NotNext);
        }
        let validators = self.shell.app.validators_at(block.header.height)?;
        if let Err(e) = certificate.verify(&block.header, &validators) {
            warn!(validator = %self.shell.address, "a peer sent block {} with a bad certificate: {e}", block.header.height);
            return Ok(Synced::BadCertificate);
        }
        let hash = block.header.hash();
        let executed = match self.shell.blocks.remove(&hash) {
            Some(executed) => executed,
            // Certified: its proposer was checked by those who decided it.
            None => match self.shell.app.validate(block, None)? {
                Ok(executed) => executed,
                Err(why) => {
                    // More than 2/3 of the stake certified a block this node cannot execute:
                    // its contracts or its state differ from the chain's.
                    return Err(Error::Consensus {
                        why: format!(
                            "certified block {} does not execute here: {why}",
                            head.height + 1
                        ),
                    });
                }
            },
        };
        // Not announced: the validators that decided it did, when it was new.
        let head = self.shell.commit(executed, &certificate, false)?;
        self.start_height(head.height + 1)?;
        Ok(Synced::Committed)
    }
}

impl Shell {
    /// Remembers that `peer` announced a head at `height`; the lowest head is forgotten when
    /// too many peers are remembered.
    pub(super) fn heard_head(&mut self, peer: Peer, heard: &Finalized) {
        // A head is believed only with a certificate: made-up heads from sybils would otherwise
        // fill the table and keep this node asking peers who have nothing.
        if self.view.check_head(heard) != kinema_net::gossip::Verdict::Accept {
            debug!(validator = %self.address, ?peer, "an uncertified head ignored");
            return;
        }
        let height = heard.header.height;
        self.ahead.insert(peer, height);
        if self.ahead.len() > AHEAD_PEERS
            && let Some(lowest) = self.ahead.iter().min_by_key(|(p, h)| (**h, **p)).map(|(p, _)| *p)
        {
            self.ahead.remove(&lowest);
        }
    }

    /// The committed blocks from `height` on with their certificates, as many as one sync
    /// answer carries.
    pub(super) fn committed_from(&self, height: u64) -> Result<Vec<(Block, Certificate)>, Error> {
        let store = self.app.store();
        let mut blocks = Vec::new();
        let mut bytes = 0;
        for height in height..height.saturating_add(SYNC_BATCH) {
            let (Some(block), Some(certificate)) =
                (store.block(height)?, store.certificate(height)?)
            else {
                break;
            };
            bytes += borsh::object_length(&block).unwrap_or(0);
            blocks.push((block, certificate));
            if bytes >= SYNC_BATCH_BYTES {
                break;
            }
        }
        Ok(blocks)
    }

    /// Asks a peer that announced a head above this node's for the blocks after it, unless a
    /// request is pending. The peer answered last is asked again; one that let a request go
    /// unanswered for [`SYNC_PATIENCE`] is passed over for the next in turn (an announcement
    /// can come from a peer this node cannot reach, or one that forwarded it without the block),
    /// and so is one no longer counted on (it was forgotten, or it lied).
    pub(super) fn request_blocks(&mut self) {
        let Ok(head) = self.app.head() else { return };
        let next = head.height + 1;
        let mut ahead: Vec<Peer> =
            self.ahead.iter().filter(|(_, h)| **h >= next).map(|(p, _)| *p).collect();
        if ahead.is_empty() {
            return;
        }
        ahead.sort_unstable();
        let now = self.config.clock.now();
        let in_turn = |last: Peer| ahead.iter().copied().find(|p| *p > last).unwrap_or(ahead[0]);
        let peer = match self.requested {
            Some((last, asked, at))
                if asked == next
                    && now.duration_since(at) < SYNC_PATIENCE
                    && ahead.contains(&last) =>
            {
                return;
            }
            // Unanswered, or no longer counted on: the next peer in turn.
            Some((last, asked, _)) if asked == next || !ahead.contains(&last) => in_turn(last),
            // It answered: asked again.
            Some((last, _, _)) => last,
            None => ahead[0],
        };
        self.requested = Some((peer, next, now));
        let request = Message::SyncRequest { height: next };
        self.out.push(Output::Send(peer, kinema_chain::encode(&request)));
    }
}
