/// How large a stored row, and a result, can be once encoded: the arithmetic behind the promise
/// that every row the store accepts can be read back in one response (docs/STORE.md, "Row size").
///
/// Every JSON field of a step run is at most `maxPayloadBytes` as Postgres renders it
/// (`JSONPayload.storedByteCount`, checked by `validate(limits:)`), except two the store builds
/// itself: `resume` wraps an output as `{"output": …, "target": "…"}` (or is the small approval
/// object), and `record_failure_recovery` merges `"failure": {"target": "…", "strategy": "…"}`
/// into `recovery` — replacing the key, so repeated merges do not accumulate. Each adds at most a
/// step name escaped by jsonb (255 bytes, at most 6 rendered bytes each) and a few dozen bytes.
extension StoreLimits {
    /// The most `resume` or `recovery` can exceed `maxPayloadBytes` by (the store's own wrapping).
    public static let maxStoreAddedBytes = 5120
    /// A step run's protobuf encoding apart from its JSON fields' contents: ids, name (255 bytes),
    /// status, timestamps, tags and lengths, and the envelope of the response around it.
    public static let stepRunFixedBytes = 1024

    /// The largest encoded step run these limits allow: six JSON fields (input, output,
    /// last_error, recovery, resume, manual) at the limit, two of them with the store's additions.
    public var maxStepRunBytes: Int {
        6 * maxPayloadBytes + 2 * Self.maxStoreAddedBytes + Self.stepRunFixedBytes
    }

    /// The largest payload limit a server accepts. `jsonb`'s binary form takes up to 4 times the
    /// rendered text (`[1, 1, …]`: 12 bytes per element), and Postgres fails to build one of about
    /// 256 MiB ("invalid memory alloc request size"; measured on 15: 134 MB built, 268 MB not), so
    /// 32 MiB of rendered text keeps every accepted payload storable.
    public static let maxPayloadBytesLimit = 32 << 20

    /// The largest payload limit whose rows fit `frameBytes`.
    public static func maxPayloadBytes(fittingFrame frameBytes: Int) -> Int {
        max(0, (frameBytes - 2 * maxStoreAddedBytes - stepRunFixedBytes) / 6)
    }
}

extension StoreResult {
    /// An upper bound on the bytes this result takes in a response (protobuf), used to refuse a
    /// `transaction` whose results would not fit one frame before it commits.
    public var encodedSizeBound: Int {
        func run(_ run: StepRun) -> Int {
            StoreLimits.stepRunFixedBytes + run.input.byteCount
                + [run.output, run.lastError, run.recovery, run.resume, run.manual].reduce(0) { $0 + ($1?.byteCount ?? 0) }
        }
        func attempt(_ attempt: StepAttempt?) -> Int { 128 + (attempt?.error?.byteCount ?? 0) }
        func names(_ names: some Sequence<String>) -> Int { names.reduce(32) { $0 + $1.utf8.count + 8 } }
        switch self {
        case .begin(let stepRun, _), .schedule(let stepRun, _), .stepRun(let stepRun): return run(stepRun)
        case .foundStepRun(let stepRun): return stepRun.map(run) ?? 64
        case .scheduledSteps(let steps), .steps(let steps, _): return names(steps) + 64
        case .deletedCount, .attemptCount, .purged: return 64
        case .outputs(let outputs, _): return outputs.reduce(96) { $0 + $1.byteCount + 8 }
        case .stepRuns(let runs, _): return runs.reduce(96) { $0 + run($1) }
        case .statuses(let statuses, _): return names(statuses.keys) + 64 + 4 * statuses.count
        case .attempt(let value): return attempt(value)
        case .latestAttempt(let value): return attempt(value)
        case .attempts(let attempts, _): return attempts.reduce(96) { $0 + attempt($1) }
        case .transaction(let results): return results.reduce(32) { $0 + 16 + $1.encodedSizeBound }
        }
    }
}
