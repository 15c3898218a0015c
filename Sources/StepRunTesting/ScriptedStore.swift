import StepRunCore
import Synchronization

/// A `StepRunStore` for server tests that need no database and exact control over when calls end:
/// it records every call, answers each with `answer(request)` — at once, or once the test
/// releases it while `holding` is on — and counts cancellations. Scripted rather than a faithful
/// in-memory store on purpose: the server's rules (framing, Hello, limits, drain, deadlines,
/// back-pressure, duplicate ids) depend on when answers come and how large they are, never on
/// what the domain rules would answer.
public final class ScriptedStore: InlineCapableStore {
    public typealias Answer = @Sendable (StoreRequest) -> Result<StoreResult, StepRunError>
    public typealias Completion = @Sendable (Result<StoreResult, StepRunError>) -> Void

    private struct Held {
        var request: StoreRequest
        var completion: Completion
        var cancelled = false
    }

    private struct State {
        var holding: Bool
        var held: [Int: Held] = [:]
        var nextKey = 0
        var started = 0
        var cancelled = 0
        var inline = 0
    }

    private let answer: Answer
    private let state: Mutex<State>

    /// A store answering every call with `answer` (by default NOT_FOUND naming the operation);
    /// with `holding`, calls wait for `release`.
    public init(holding: Bool = false, answer: @escaping Answer = ScriptedStore.notFound) {
        self.answer = answer
        self.state = Mutex(State(holding: holding))
    }

    /// NOT_FOUND naming the operation: a real answer, cheap to tell apart.
    public static let notFound: Answer = { request in .failure(.notFound("scripted: \(request.operationName)")) }

    /// Whether new calls are held until `release`.
    public var holding: Bool {
        get { state.withLock { $0.holding } }
        set { state.withLock { $0.holding = newValue } }
    }

    /// How many calls were started.
    public var started: Int { state.withLock { $0.started } }
    /// How many calls are held, waiting for `release`.
    public var waiting: Int { state.withLock { $0.held.count } }
    /// How many held calls were cancelled by their caller (the connection closed).
    public var cancelled: Int { state.withLock { $0.cancelled } }
    /// How many calls were started with leave to run on the caller's thread.
    public var startedInline: Int { state.withLock { $0.inline } }

    /// Answers every held call (oldest first), cancelled ones included: a store call that has
    /// begun is not interrupted.
    public func release() {
        let held = state.withLock { state in
            defer { state.held = [:] }
            return state.held.sorted { $0.key < $1.key }.map(\.value)
        }
        for call in held { call.completion(answer(call.request)) }
    }

    public func start(_ request: StoreRequest, deadline: ContinuousClock.Instant, completion: @escaping Completion) -> StoreCallHandle {
        begin(request, inline: false, completion: completion)
    }

    /// Counted in `startedInline`; otherwise the same as `start`.
    public func startInline(_ request: StoreRequest, deadline: ContinuousClock.Instant, completion: @escaping Completion) -> StoreCallHandle {
        begin(request, inline: true, completion: completion)
    }

    private func begin(_ request: StoreRequest, inline: Bool, completion: @escaping Completion) -> StoreCallHandle {
        let key: Int? = state.withLock { state in
            state.started += 1
            if inline { state.inline += 1 }
            guard state.holding else { return nil }
            defer { state.nextKey += 1 }
            state.held[state.nextKey] = Held(request: request, completion: completion)
            return state.nextKey
        }
        guard let key else {
            completion(answer(request))
            return StoreCallHandle {}
        }
        return StoreCallHandle { [self] in
            self.state.withLock { state in
                if state.held[key]?.cancelled == false {
                    state.held[key]?.cancelled = true
                    state.cancelled += 1
                }
            }
        }
    }

    public func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
        try await withCheckedThrowingContinuation { continuation in
            _ = start(request, deadline: deadline ?? .now.advanced(by: .seconds(30))) {
                continuation.resume(with: $0)
            }
        }
    }
}
