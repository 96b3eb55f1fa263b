//! A small cache of look-up replies. Entries expire after their own time to live (short for
//! things that move, such as the latest version or an alias; long for immutable versions) and
//! the whole cache holds at most a fixed number of entries (the oldest expiring one goes first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medallion_argo::ExecuteTemplateReply;

pub struct ReplyCache {
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, ExecuteTemplateReply)>>,
}

impl ReplyCache {
    pub fn new(capacity: usize) -> ReplyCache {
        ReplyCache {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<ExecuteTemplateReply> {
        let entries = self.entries.lock().ok()?;
        let (expires, reply) = entries.get(key)?;
        (Instant::now() < *expires).then(|| reply.clone())
    }

    pub fn put(&self, key: String, ttl: Duration, reply: ExecuteTemplateReply) {
        if ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= self.capacity {
            entries.retain(|_, (expires, _)| *expires > now);
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(key, (now + ttl, reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medallion_argo::NodePhase;

    fn reply(msg: &str) -> ExecuteTemplateReply {
        ExecuteTemplateReply::node(NodePhase::Succeeded, msg, vec![])
    }

    #[test]
    fn expires_and_stays_bounded() {
        let cache = ReplyCache::new(2);
        cache.put("a".into(), Duration::from_millis(30), reply("a"));
        cache.put("b".into(), Duration::from_secs(60), reply("b"));
        assert_eq!(cache.get("a"), Some(reply("a")));
        cache.put("c".into(), Duration::from_secs(60), reply("c"));
        // Full: "a" (soonest to expire) made room for "c".
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), Some(reply("b")));
        cache.put("d".into(), Duration::from_millis(10), reply("d"));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(cache.get("d"), None);
        cache.put("z".into(), Duration::ZERO, reply("z"));
        assert_eq!(cache.get("z"), None);
    }
}
