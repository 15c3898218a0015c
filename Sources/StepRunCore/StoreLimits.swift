/// Size limits the store enforces on every call before any SQL runs.
public struct StoreLimits: Sendable, Hashable {
    /// Largest JSON payload, in bytes of UTF-8 text (default 1 MiB).
    public var maxPayloadBytes: Int
    /// Most steps named in one `scheduleSteps` or `deletePendingSteps` call.
    public var maxStepsPerCall: Int
    /// Most operations in one `transaction`.
    public var maxTransactionOperations: Int
    /// The most one response may carry (the server's frame limit); a `transaction` whose results
    /// would not fit is rolled back and refused. Nil: no bound (a store used in-process).
    public var maxResponseBytes: Int?

    /// Longest step name, in UTF-8 bytes.
    public static let maxStepNameBytes = 255

    public init(
        maxPayloadBytes: Int = 1 << 20, maxStepsPerCall: Int = 10_000, maxTransactionOperations: Int = 1_000,
        maxResponseBytes: Int? = nil
    ) {
        self.maxPayloadBytes = maxPayloadBytes
        self.maxStepsPerCall = maxStepsPerCall
        self.maxTransactionOperations = maxTransactionOperations
        self.maxResponseBytes = maxResponseBytes
    }

    public static let `default` = StoreLimits()
}
