//! Evidence: double votes and double proposals Malachite saw during a height become evidence
//! transactions, submitted and gossiped by the validator that saw them.

use super::*;

impl Shell {
    /// Submits evidence of each pair of conflicting messages a validator of this height signed.
    pub(super) fn report<'a, M: 'a>(
        &mut self,
        offences: impl IntoIterator<Item = (&'a ValidatorAddress, &'a Vec<(M, M)>)>,
        evidence: impl Fn(&Ctx, &M, &M, PublicKey) -> Evidence,
    ) {
        for (address, pairs) in offences {
            let Some(member) = self.validators.member(address) else { continue };
            let key = member.public_key;
            for (first, second) in pairs {
                let proof = evidence(&self.ctx, first, second, key);
                self.submit_evidence(proof);
            }
        }
    }

    pub(super) fn submit_evidence(&mut self, evidence: Evidence) {
        let offender = evidence.offender().map(|a| a.to_string()).unwrap_or_default();
        match self.app.submit_call(
            &self.config.key,
            Call::Evidence(Box::new(evidence)),
            EVIDENCE_FEE,
        ) {
            Ok(Ok(tx)) => {
                warn!(validator = %self.address, %offender, "reporting a double vote");
                self.broadcast(&Message::Tx(kinema_chain::encode(&tx)));
            }
            Ok(Err(refusal)) => {
                debug!(validator = %self.address, %offender, "evidence not submitted: {refusal}")
            }
            Err(e) => {
                self.fatal.get_or_insert(e);
            }
        }
    }
}
