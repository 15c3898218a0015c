/// How the repository reaches Postgres and how its connection pool behaves.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URL (`postgresql://user@host:5432/db`) or key=value conninfo string.
    public var connectionString: String
    /// The Postgres schema that holds steprund's tables.
    public var schema: String
    /// Number of connections; each is driven by its own thread.
    public var poolSize: Int
    /// Calls that may wait for a connection; beyond this a call fails with `RESOURCE_EXHAUSTED`.
    public var maxWaitQueue: Int
    /// Server-side `statement_timeout` set on every connection.
    public var statementTimeout: Duration
    /// libpq `connect_timeout`.
    public var connectTimeout: Duration
    /// Deadline used for calls that come without one.
    public var defaultTimeout: Duration
    /// The first wait before reconnecting after a failed connection attempt; doubles up to `maxReconnectBackoff`.
    public var initialReconnectBackoff: Duration
    /// The longest wait between reconnection attempts.
    public var maxReconnectBackoff: Duration
    /// Reported to Postgres as `application_name`.
    public var applicationName: String
    /// Most write calls committed together in one transaction when they queue up (group commit);
    /// 1 turns it off. Groups form only from calls already waiting, so a lone call never waits.
    public var groupCommitMax: Int
    /// How long a read may run inline, on the thread that submitted it (the server's event loop) when the
    /// pool is quiet — no call running or waiting — before it is handed to the connection's own
    /// thread; `.zero` turns this off. Saves the two thread hops a quiet read otherwise makes.
    public var inlineReadWait: Duration
    /// The same for begin_step and complete_step calls with payloads of up to 4 KiB
    /// (`StoreOperations.isSmallStepWrite`): on a quiet pool such a call runs in autocommit
    /// on the event loop, blocking it at most this long (the commit's WAL flush included); `.zero`
    /// turns this off.
    public var inlineWriteWait: Duration
    /// A group with at least this many begin_step / complete_step calls with payloads up to 4 KiB
    /// (`StoreOperations.isSmallStepWrite`) holds the next group back
    /// until it has committed (see `PoolStateMachine.holdThreshold`): under load,
    /// fewer and larger groups. 0 turns it off.
    public var groupCommitHold: Int

    public init(
        connectionString: String, schema: String = "steprun", poolSize: Int = 8, maxWaitQueue: Int = 4096,
        statementTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(5),
        defaultTimeout: Duration = .seconds(30), initialReconnectBackoff: Duration = .milliseconds(50),
        maxReconnectBackoff: Duration = .seconds(1), applicationName: String = "steprund", groupCommitMax: Int = 64,
        inlineReadWait: Duration = .microseconds(200), inlineWriteWait: Duration = .microseconds(200), groupCommitHold: Int = 8
    ) {
        self.groupCommitMax = groupCommitMax
        self.inlineReadWait = inlineReadWait
        self.inlineWriteWait = inlineWriteWait
        self.groupCommitHold = groupCommitHold
        self.connectionString = connectionString
        self.schema = schema
        self.poolSize = poolSize
        self.maxWaitQueue = maxWaitQueue
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
        self.defaultTimeout = defaultTimeout
        self.initialReconnectBackoff = initialReconnectBackoff
        self.maxReconnectBackoff = maxReconnectBackoff
        self.applicationName = applicationName
    }

    /// libpq connection parameters, our defaults first so that anything in `connectionString` wins.
    ///
    /// `target_session_attrs=read-write`: with a multi-host URL (`postgresql://a,b/db`) libpq
    /// tries the hosts in turn and keeps only a server that takes writes, so a standby listed
    /// first is skipped, and after a failover the next reconnect finds the promoted one. A URL
    /// may still say otherwise; a read-only server is then refused by `PGConnection` itself.
    ///
    /// Every statement reaches its rows through an index, so connections use one generic plan per
    /// prepared statement (left to choose, the plan cache re-planned `complete_steps` on every
    /// execution at moderate load, which cost more than running it) and never a sequential scan (a
    /// plan made while a table was nearly empty must not scan it once it is large).
    var connectionParameters: [(String, String)] {
        [
            ("connect_timeout", String(max(1, connectTimeout.components.seconds))),
            ("application_name", applicationName),
            ("options", "-c statement_timeout=\(statementTimeout.inMilliseconds) -c client_min_messages=warning -c plan_cache_mode=force_generic_plan -c enable_seqscan=off"),
            ("target_session_attrs", "read-write"),
            ("keepalives", "1"),
            ("keepalives_idle", "30"),
            ("keepalives_interval", "10"),
            ("keepalives_count", "3"),
            ("dbname", connectionString),
        ]
    }
}

