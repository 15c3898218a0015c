import Synchronization

/// A snapshot of the pool for metrics and health output.
public struct PoolStatistics: Sendable, Hashable {
    /// Configured number of connections.
    public var size: Int
    /// Workers running a call right now.
    public var busy: Int
    /// Workers waiting for a call.
    public var idle: Int
    /// Calls waiting for a free connection.
    public var waiting: Int
    /// Connections currently open to Postgres.
    public var connected: Int
    /// Transactions that committed a group of several write calls together.
    public var groupCommits: Int
    /// Write calls answered through those group commits.
    public var groupCommittedCalls: Int
    /// Reads run on the caller's thread because the pool was quiet (`inlineReadWait`).
    public var inlineReads: Int
    /// Of those, reads whose answer took longer than `inlineReadWait` and which were handed over to a worker to finish.
    public var inlineReadHandovers: Int
    /// begin_step and complete_step calls run on the caller's thread because the pool was quiet
    /// (`inlineWriteWait`).
    public var inlineWrites: Int
    /// Of those, writes whose answer took longer than `inlineWriteWait` and which were handed over to a worker to finish.
    public var inlineWriteHandovers: Int
    /// Groups started the moment a held group committed (`groupCommitHold`): calls gathered behind a
    /// running group and sent on at once.
    public var heldGroupHandovers: Int
    /// Statements cancelled because every caller waiting for them had passed its deadline
    /// (`StatementWatch`).
    public var cancelledStatements: Int = 0
}

/// The pool's running totals, counted without the state lock (relaxed atomics: statistics only).
final class PoolCounters: Sendable {
    let groupCommits = Atomic<Int>(0)
    let groupCommittedCalls = Atomic<Int>(0)
    let inlineReads = Atomic<Int>(0)
    let inlineReadHandovers = Atomic<Int>(0)
    let inlineWrites = Atomic<Int>(0)
    let inlineWriteHandovers = Atomic<Int>(0)
    let heldGroupHandovers = Atomic<Int>(0)

    func countInline(isRead: Bool, handedOver: Bool) {
        if isRead {
            inlineReads.add(1, ordering: .relaxed)
            if handedOver { inlineReadHandovers.add(1, ordering: .relaxed) }
        } else {
            inlineWrites.add(1, ordering: .relaxed)
            if handedOver { inlineWriteHandovers.add(1, ordering: .relaxed) }
        }
    }

    func countHeldGroupHandover() {
        heldGroupHandovers.add(1, ordering: .relaxed)
    }

    func countGroupCommit(calls: Int) {
        groupCommits.add(1, ordering: .relaxed)
        groupCommittedCalls.add(calls, ordering: .relaxed)
    }

    /// The totals, with the state machine's current numbers.
    func snapshot(size: Int, busy: Int, idle: Int, waiting: Int, connected: Int, cancelledStatements: Int) -> PoolStatistics {
        PoolStatistics(
            size: size, busy: busy, idle: idle, waiting: waiting, connected: connected,
            groupCommits: groupCommits.load(ordering: .relaxed), groupCommittedCalls: groupCommittedCalls.load(ordering: .relaxed),
            inlineReads: inlineReads.load(ordering: .relaxed), inlineReadHandovers: inlineReadHandovers.load(ordering: .relaxed),
            inlineWrites: inlineWrites.load(ordering: .relaxed), inlineWriteHandovers: inlineWriteHandovers.load(ordering: .relaxed),
            heldGroupHandovers: heldGroupHandovers.load(ordering: .relaxed), cancelledStatements: cancelledStatements)
    }
}
