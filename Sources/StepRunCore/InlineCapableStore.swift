/// A store that can run a quick call on the caller's own thread ("inline") instead of handing it
/// to a thread of its own — a performance capability, kept out of `StepRunStore` so the domain
/// protocol says only what a call does, not where it runs.
///
/// The caller decides whether its thread may be used (the server: only for the last request of
/// a burst, so none waits behind another) and checks once whether its store adopts this protocol
/// (`ServerContext.inlineStore`); the store decides whether the call is quick enough (the
/// Postgres repository: a read or a small step write on a quiet pool, for at most its configured
/// inline wait, else it takes the normal path).
public protocol InlineCapableStore: StepRunStore {
    /// As `start`, but the store may run the call on the calling thread, blocking it briefly.
    func startInline(
        _ request: StoreRequest, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle
}
