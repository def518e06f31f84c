//! The producer a queue publishes with, replaced when librdkafka declares it dead.
//!
//! An idempotent producer whose messages timed out while the brokers were unreachable
//! can be fenced once they are back (`ProducerFenced`); librdkafka treats that as fatal
//! and fails every later send the same way, so one outage would stop a process from
//! publishing until it restarts. A send that finds its producer dead builds a new one
//! and tries once more through it. Whatever the dead producer failed to send was not
//! stored by the brokers, and its caller's retry (the outbox, the reconciler) stands; a
//! duplicate is harmless (a claim is a compare-and-set).

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::KafkaConfig;

pub(super) struct Publisher {
    config: KafkaConfig,
    current: RwLock<FutureProducer>,
}

impl Publisher {
    pub fn new(config: &KafkaConfig) -> KafkaResult<Self> {
        Ok(Self {
            config: config.clone(),
            current: RwLock::new(producer(config)?),
        })
    }

    /// The live producer (for metadata requests).
    pub fn producer(&self) -> FutureProducer {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends the record `make` builds and waits up to `timeout` for the brokers to hold
    /// it; through a new producer if the current one turns out dead.
    pub async fn send<'a, K, P>(
        &self,
        make: impl Fn() -> FutureRecord<'a, K, P>,
        timeout: Duration,
    ) -> Result<(), KafkaError>
    where
        K: ToBytes + ?Sized + 'a,
        P: ToBytes + ?Sized + 'a,
    {
        let mut tried_fresh = false;
        loop {
            let producer = self.producer();
            let err = match producer.send(make(), timeout).await {
                Ok(_) => return Ok(()),
                Err((err, _)) => err,
            };
            if tried_fresh || !self.replace_if_dead(&producer, &err) {
                return Err(err);
            }
            tried_fresh = true;
        }
    }

    /// Replaces `seen` if `err` (or librdkafka) says it is dead; whether a live producer
    /// is in place now.
    fn replace_if_dead(&self, seen: &FutureProducer, err: &KafkaError) -> bool {
        let fatal = seen.client().fatal_error().map(|(code, _)| code);
        let Some(code) = fatal.or(err.rdkafka_error_code().filter(|code| is_fencing(*code))) else {
            return false;
        };
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.client().native_ptr() != seen.client().native_ptr() {
            // Another send replaced it already.
            return true;
        }
        match producer(&self.config) {
            Ok(fresh) => {
                tracing::warn!(%code, error = %err, "the Kafka producer failed for good; publishing through a new one");
                *current = fresh;
                true
            }
            Err(build) => {
                tracing::warn!(%code, error = %build, "the Kafka producer failed for good and a new one cannot be made");
                false
            }
        }
    }
}

/// Errors after which an idempotent producer never sends again.
fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fatal
    )
}

/// A keyed, idempotent, `acks=all` producer.
fn producer(config: &KafkaConfig) -> KafkaResult<FutureProducer> {
    config
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", config.publish_timeout_ms.to_string())
        .create()
}
