/// The pool's wait queue: first in, first out, with removal by id in O(1).
///
/// Entries sit in an array read from `head`; a removed entry leaves a hole (nil) that `popFirst`
/// skips. `positions` maps a queued id to its position counted from the queue's creation
/// (`base` + array index), so compacting the array — dropping the consumed front — never has to
/// renumber the map. Cancelling or expiring one of many waiting calls therefore costs one hash
/// lookup, not a scan.
struct PoolQueue<Job> {
    private struct Entry {
        var id: UInt64
        var job: Job
    }

    private var entries: [Entry?] = []
    private var head = 0
    /// The absolute position of `entries[0]`.
    private var base = 0
    private var positions: [UInt64: Int] = [:]
    private(set) var count = 0

    init(capacity: Int = 0) {
        positions.reserveCapacity(min(capacity, 1024))
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ job: Job, id: UInt64) {
        positions[id] = base + entries.count
        entries.append(Entry(id: id, job: job))
        count += 1
    }

    /// The first job, if `condition` (when given) accepts it; otherwise nil and the queue is unchanged.
    mutating func popFirst(where condition: ((Job) -> Bool)? = nil) -> Job? {
        while head < entries.count {
            guard let entry = entries[head] else {
                head += 1
                continue
            }
            if let condition, !condition(entry.job) { break }
            entries[head] = nil
            head += 1
            positions[entry.id] = nil
            count -= 1
            compact()
            return entry.job
        }
        compact()
        return nil
    }

    /// Removes the job queued under `id`, without looking at any other entry.
    mutating func remove(id: UInt64) -> Job? {
        guard let position = positions.removeValue(forKey: id) else { return nil }
        let index = position - base
        guard let entry = entries[index] else { return nil }
        entries[index] = nil
        count -= 1
        compact()
        return entry.job
    }

    /// Removes every job `shouldRemove` accepts, in queue order (the expiry timer: one pass over
    /// the queue per firing, not per call).
    mutating func removeAll(where shouldRemove: (Job) -> Bool) -> [Job] {
        var removed: [Job] = []
        for index in head..<entries.count {
            guard let entry = entries[index], shouldRemove(entry.job) else { continue }
            entries[index] = nil
            positions[entry.id] = nil
            count -= 1
            removed.append(entry.job)
        }
        compact()
        return removed
    }

    /// Calls `body` with every queued job, in order.
    func forEach(_ body: (Job) -> Void) {
        for index in head..<entries.count {
            if let entry = entries[index] { body(entry.job) }
        }
    }

    private mutating func compact() {
        if count == 0 {
            base += entries.count
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            base += head
            head = 0
        }
    }
}
