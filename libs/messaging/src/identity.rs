//! Which topic a consumer reads: Kafka's topic id and the partition count, so that a read
//! model can tell the log it was built from from a recreated or re-partitioned one (both
//! restart offsets, which the read model uses as write timestamps).
//!
//! rdkafka's metadata does not carry the topic id, so this module asks librdkafka itself
//! (`rd_kafka_DescribeTopics`, librdkafka 2.x) through the bindings rdkafka re-exports.
//! The workspace denies `unsafe`; this module is the one exception, and every block says
//! why it is sound. The calls run on a blocking thread: the poll of the result waits.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use uuid::Uuid;

use crate::AdminError;

/// What a topic is: its id (new every time a topic of that name is created) and how many
/// partitions it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicIdentity {
    pub id: Uuid,
    pub partitions: i32,
}

impl fmt::Display for TopicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {}, {} partitions", self.id, self.partitions)
    }
}

/// How long one DescribeTopics request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the cluster what `topic` is now, with a long-lived admin client: the persister
/// and the notifier ask again on every check, without a new connection each time.
#[derive(Clone)]
pub struct TopicWatch {
    admin: Arc<AdminClient<DefaultClientContext>>,
    topic: String,
}

impl fmt::Debug for TopicWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicWatch")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl TopicWatch {
    pub fn new(bootstrap: &str, topic: &str) -> Result<Self, AdminError> {
        Ok(Self {
            admin: Arc::new(crate::admin_client(bootstrap)?),
            topic: topic.to_owned(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic's identity at a service's start: a topic created a moment ago may not be
    /// in the broker's metadata yet (KRaft brokers learn of it from the controller a
    /// little later), so "no such topic" is asked again for a few seconds before it is
    /// the answer.
    pub async fn identity_at_start(&self) -> Result<TopicIdentity, AdminError> {
        let deadline = std::time::Instant::now() + NEW_TOPIC_GRACE;
        loop {
            match self.identity().await {
                Err(AdminError::NoTopic(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                answer => return answer,
            }
        }
    }

    /// The topic's identity now. Runs the request off the async threads.
    pub async fn identity(&self) -> Result<TopicIdentity, AdminError> {
        let (admin, topic) = (Arc::clone(&self.admin), self.topic.clone());
        tokio::task::spawn_blocking(move || describe_topic(&admin, &topic))
            .await
            .map_err(|e| AdminError::Abandoned(e.to_string()))?
    }
}

/// How long a service's start waits for a topic that is not in the metadata yet.
const NEW_TOPIC_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The identity of `topic` now, with a client of the given brokers (one request; for
/// repeated checks keep a [`TopicWatch`]).
pub async fn topic_identity(bootstrap: &str, topic: &str) -> Result<TopicIdentity, AdminError> {
    TopicWatch::new(bootstrap, topic)?.identity().await
}

/// Frees a librdkafka object when dropped, so that every path out of
/// [`describe_topic`] (each `?` included) releases what it created.
struct Owned<T> {
    ptr: *mut T,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    /// `None` when librdkafka returned a null pointer (nothing to free).
    fn new(ptr: *mut T, free: unsafe extern "C" fn(*mut T)) -> Option<Self> {
        (!ptr.is_null()).then_some(Self { ptr, free })
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is non-null (checked in `new`), was returned by the librdkafka
        // constructor that `free` is the destructor of, and this guard is its only owner,
        // so it is freed exactly once.
        unsafe { (self.free)(self.ptr) }
    }
}

/// Copies a C string that librdkafka owns; `None` for a null pointer.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string that lives during the call.
unsafe fn text(ptr: *const c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!ptr.is_null()).then(|| {
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    })
}

/// One DescribeTopics request for `topic` on `admin`'s handle, answered on a queue of our
/// own. Blocking.
fn describe_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<TopicIdentity, AdminError> {
    let failed = |reason: String| AdminError::Topic {
        action: "describe",
        topic: topic.to_owned(),
        reason,
    };
    let name = CString::new(topic).map_err(|_| failed("the name holds a NUL byte".into()))?;
    let rk = admin.inner().native_ptr();

    // SAFETY: `rk` is the live handle of `admin`, which outlives this function. The queue
    // is freed by its guard after the event polled from it (declared later, so dropped
    // first).
    let queue = Owned::new(
        unsafe { rd::rd_kafka_queue_new(rk) },
        rd::rd_kafka_queue_destroy,
    )
    .ok_or_else(|| failed("librdkafka could not make a queue".into()))?;
    // SAFETY: `rk` is live (as above); the options are freed by their guard, after the
    // request that reads them was enqueued (librdkafka copies them).
    let options = Owned::new(
        unsafe {
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            )
        },
        rd::rd_kafka_AdminOptions_destroy,
    )
    .ok_or_else(|| failed("librdkafka could not make admin options".into()))?;
    let mut errstr = [0 as c_char; 256];
    // SAFETY: `options.ptr` is live; `errstr` is a writable buffer of the length given.
    let set = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            REQUEST_TIMEOUT.as_millis() as i32,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka wrote a NUL-terminated message into the zeroed buffer.
        let reason = unsafe { text(errstr.as_ptr()) }.unwrap_or_default();
        return Err(failed(format!("cannot set the request timeout: {reason}")));
    }
    let mut names = [name.as_ptr()];
    // SAFETY: `names` holds one pointer to a NUL-terminated string that outlives the call;
    // librdkafka copies the names into the collection, which its guard frees.
    let collection = Owned::new(
        unsafe { rd::rd_kafka_TopicCollection_of_topic_names(names.as_mut_ptr(), names.len()) },
        rd::rd_kafka_TopicCollection_destroy,
    )
    .ok_or_else(|| failed("librdkafka could not make a topic collection".into()))?;
    // SAFETY: every pointer is live; librdkafka copies the collection and the options
    // before it returns, and posts exactly one result event to `queue`.
    unsafe { rd::rd_kafka_DescribeTopics(rk, collection.ptr, options.ptr, queue.ptr) };

    // The request carries its own timeout; wait a little longer for its answer.
    let wait = (REQUEST_TIMEOUT + Duration::from_secs(2)).as_millis() as i32;
    // SAFETY: `queue.ptr` is live; the event returned (if any) is ours to destroy, which
    // its guard does, before the queue's guard runs (reverse declaration order).
    let event = Owned::new(
        unsafe { rd::rd_kafka_queue_poll(queue.ptr, wait) },
        rd::rd_kafka_event_destroy,
    )
    .ok_or_else(|| failed(format!("no answer within {wait} ms")))?;
    // SAFETY: `event.ptr` is a live event; the error string belongs to it.
    let error = unsafe { rd::rd_kafka_event_error(event.ptr) };
    if error != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        let reason = unsafe { text(rd::rd_kafka_event_error_string(event.ptr)) };
        return Err(failed(reason.unwrap_or_else(|| format!("{error:?}"))));
    }
    // SAFETY: `event.ptr` is live; the result is a view into it (null if the event is of
    // another type), valid until the event is destroyed at the end of this function.
    let result = unsafe { rd::rd_kafka_event_DescribeTopics_result(event.ptr) };
    if result.is_null() {
        return Err(failed("the answer is not a DescribeTopics result".into()));
    }
    let mut count = 0usize;
    // SAFETY: `result` is live (above); the array and its descriptions belong to the event.
    let topics = unsafe { rd::rd_kafka_DescribeTopics_result_topics(result, &mut count) };
    if topics.is_null() || count == 0 {
        return Err(failed("the answer describes no topic".into()));
    }
    // SAFETY: `topics` points to `count` (>= 1) descriptions owned by the event.
    let description = unsafe { *topics };
    // SAFETY: `description` is live; the error (null when none) belongs to it.
    let topic_error = unsafe { rd::rd_kafka_TopicDescription_error(description) };
    if !topic_error.is_null() {
        // SAFETY: `topic_error` is a live error object owned by the description.
        let code = unsafe { rd::rd_kafka_error_code(topic_error) };
        if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART {
            return Err(AdminError::NoTopic(topic.to_owned()));
        }
        // SAFETY: as above; the string belongs to the error.
        let reason = unsafe { text(rd::rd_kafka_error_string(topic_error)) };
        return Err(failed(reason.unwrap_or_else(|| format!("{code:?}"))));
    }
    let mut partitions = 0usize;
    // SAFETY: `description` is live; only the count is used, the array is not read.
    unsafe { rd::rd_kafka_TopicDescription_partitions(description, &mut partitions) };
    // SAFETY: `description` is live; the id (null when the broker sent none) belongs to it.
    let uuid = unsafe { rd::rd_kafka_TopicDescription_topic_id(description) };
    if uuid.is_null() {
        return Err(failed("the broker sent no topic id".into()));
    }
    // SAFETY: `uuid` is a live id owned by the description.
    let (high, low) = unsafe {
        (
            rd::rd_kafka_Uuid_most_significant_bits(uuid),
            rd::rd_kafka_Uuid_least_significant_bits(uuid),
        )
    };
    let id = Uuid::from_u64_pair(high as u64, low as u64);
    if id.is_nil() {
        return Err(failed("the broker sent the zero topic id".into()));
    }
    Ok(TopicIdentity {
        id,
        partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
    })
}

/// The partition the platform's producers put `key` in, for a topic of `partitions`
/// partitions: librdkafka's default partitioner (`consistent_random`), which is CRC-32 of
/// the key modulo the partition count. A consumer compares a record's partition with this
/// to tell a record written under another partition count (its key moved, and its offset
/// no longer orders it after the document's earlier writes).
pub fn partition_of_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (crc32(key) % partitions as u32) as i32
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and librdkafka compute it), bit by bit: keys are
/// short, and a table would be more code than this.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_key_stays_in_range() {
        for partitions in 1..8 {
            let p = partition_of_key(b"0f8e1b4c-9a7d-4e21-8c3b-5d6f7a8b9c0d", partitions);
            assert!((0..partitions).contains(&p));
        }
    }
}
