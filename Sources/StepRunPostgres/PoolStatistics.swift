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
    /// Of those, reads whose answer took longer than `inlineReadWait` and which a worker finished.
    public var inlineReadHandoffs: Int
    /// begin_step and complete_step calls run on the caller's thread because the pool was quiet
    /// (`inlineWriteWait`).
    public var inlineWrites: Int
    /// Of those, writes whose answer took longer than `inlineWriteWait` and which a worker finished.
    public var inlineWriteHandoffs: Int
    /// Groups started the moment a held group committed (`groupHold`): calls gathered behind a
    /// running group and sent on at once.
    public var heldGroupHandovers: Int
    /// Statements cancelled because every caller waiting for them had passed its deadline
    /// (`StatementWatch`).
    public var cancelledStatements: Int = 0
}
