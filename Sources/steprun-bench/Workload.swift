import Foundation
import StepRunCore
import Synchronization

/// What one benchmark client does, one store call at a time.
///
/// A workload is a small state machine: `next()` names the call to make, `check(_:)` looks at the
/// answer and moves on. The same workload runs over the daemon (async) and directly over libpq
/// (on a thread), so both targets issue exactly the same sequence of operations.
protocol Workload {
    /// The next call this client makes.
    mutating func next() -> StoreRequest
    /// Looks at the answer to the last call; returns why it counts as an error, or nil.
    mutating func check(_ outcome: Result<StoreResult, StepRunError>) -> String?
}

/// The scenarios of issue 5.
enum Scenario: String, CaseIterable, Sendable {
    /// begin_step then complete_step on a fresh step, over and over.
    case claimComplete = "claim-complete"
    /// Several deliveries of each step race for it; the one told to execute completes it.
    case claimContended = "claim-contended"
    /// get_step_run and step_statuses, alternately, on runs prepared before the measurement.
    case read
    /// schedule_steps of `fanOutWidth` steps, then begin_step and complete_step for each.
    case fanOut = "fan-out"
}

/// Everything the clients of one measured run share. Built once per run, before the clock starts.
struct WorkloadPlan: Sendable {
    var scenario: Scenario
    var payloads: PayloadSet
    var deliveries: Int
    var fanOutWidth: Int
    var dataset: ReadDataset?
    let contention = ContentionCounters()
    /// The run every contended delivery belongs to; fresh for each measured run.
    let contendedRunID = UUID.v7()

    func makeWorkload(client: Int) -> any Workload {
        switch scenario {
        case .claimComplete:
            ClaimComplete(payloads: payloads.rotated(by: client))
        case .claimContended:
            ClaimContended(payloads: payloads.rotated(by: client), runID: contendedRunID, deliveries: deliveries, counters: contention)
        case .read:
            ReadMix(dataset: dataset!, seed: UInt64(client))
        case .fanOut:
            FanOut(payloads: payloads.rotated(by: client), width: fanOutWidth)
        }
    }

    /// Checks the exactly-once rule after the run: every step some delivery asked for was executed once.
    func contentionViolation() -> String? {
        guard scenario == .claimContended else { return nil }
        let tickets = contention.tickets.load(ordering: .relaxed)
        let steps = (tickets + deliveries - 1) / deliveries
        let executes = contention.executes.load(ordering: .relaxed)
        let failedClaims = contention.failedClaims.load(ordering: .relaxed)
        // A claim that failed with an error may or may not have executed; only judge clean runs.
        guard failedClaims == 0, executes != steps else { return nil }
        return "\(executes) deliveries were told to execute for \(steps) distinct steps (expected exactly one each)"
    }
}

/// Shared between the clients of a contended run.
final class ContentionCounters: Sendable {
    /// Deliveries handed out; delivery `t` is for step `t / deliveries`.
    let tickets = Atomic<Int>(0)
    /// Deliveries that were told `execute`.
    let executes = Atomic<Int>(0)
    /// begin_step calls that failed, so the exactly-once check cannot be judged.
    let failedClaims = Atomic<Int>(0)
}

/// A handful of distinct JSON objects of exactly the requested size.
///
/// The filler is random letters and digits, so Postgres cannot compress a large payload to almost
/// nothing (as it would a run of one character) and the stored size is close to the sent size.
struct PayloadSet: Sendable {
    let bytes: Int
    private let payloads: [JSONPayload]
    private var index = 0

    /// `{"d":""}` is the smallest object this builds.
    static let minimumBytes = 8

    init(bytes: Int, variants: Int = 8) {
        precondition(bytes >= Self.minimumBytes)
        self.bytes = bytes
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        payloads = (0..<variants).map { _ in
            var text = [UInt8]()
            text.reserveCapacity(bytes)
            text.append(contentsOf: #"{"d":""#.utf8)
            for _ in 0..<(bytes - Self.minimumBytes) {
                text.append(alphabet[Int(generator.next() % UInt64(alphabet.count))])
            }
            text.append(contentsOf: #""}"#.utf8)
            // Built from known-good parts; validated once here rather than trusted.
            return try! JSONPayload(validating: text)
        }
    }

    /// The same set, starting at a different variant, so concurrent clients do not send identical bytes.
    func rotated(by offset: Int) -> PayloadSet {
        var copy = self
        copy.index = offset % payloads.count
        return copy
    }

    mutating func next() -> JSONPayload {
        defer { index = (index + 1) % payloads.count }
        return payloads[index]
    }
}

func describe(_ error: StepRunError) -> String {
    "\(error.code): \(error.message)"
}

func unexpected(_ outcome: Result<StoreResult, StepRunError>, _ expectation: String) -> String {
    switch outcome {
    case .failure(let error): describe(error)
    case .success(let result): "expected \(expectation), got \(String(describing: result).prefix(200))"
    }
}

// MARK: Scenarios

/// begin_step on a fresh step (→ execute), then complete_step on it.
struct ClaimComplete: Workload {
    var payloads: PayloadSet
    private var claimed: UUID?

    init(payloads: PayloadSet) {
        self.payloads = payloads
    }

    mutating func next() -> StoreRequest {
        if let claimed {
            return .completeStep(stepRunID: claimed, output: payloads.next())
        }
        return .beginStep(runID: UUID.v7(), step: "charge-card", input: payloads.next(), recovery: nil)
    }

    mutating func check(_ outcome: Result<StoreResult, StepRunError>) -> String? {
        if claimed != nil {
            claimed = nil
            guard case .success(.stepRun(let stepRun)) = outcome, stepRun.status == .completed else {
                return unexpected(outcome, "a completed step run")
            }
            return nil
        }
        guard case .success(.begin(let stepRun, .execute)) = outcome else { return unexpected(outcome, "begin → execute") }
        claimed = stepRun.id
        return nil
    }
}

/// `deliveries` consecutive tickets name the same step, so that many clients race for it at once.
struct ClaimContended: Workload {
    var payloads: PayloadSet
    let runID: UUID
    let deliveries: Int
    let counters: ContentionCounters
    private var claimed: UUID?

    init(payloads: PayloadSet, runID: UUID, deliveries: Int, counters: ContentionCounters) {
        self.payloads = payloads
        self.runID = runID
        self.deliveries = deliveries
        self.counters = counters
    }

    mutating func next() -> StoreRequest {
        if let claimed {
            return .completeStep(stepRunID: claimed, output: payloads.next())
        }
        let ticket = counters.tickets.add(1, ordering: .relaxed).oldValue
        return .beginStep(runID: runID, step: "step-\(ticket / deliveries)", input: payloads.next(), recovery: nil)
    }

    mutating func check(_ outcome: Result<StoreResult, StepRunError>) -> String? {
        if claimed != nil {
            claimed = nil
            guard case .success(.stepRun(let stepRun)) = outcome, stepRun.status == .completed else {
                return unexpected(outcome, "a completed step run")
            }
            return nil
        }
        switch outcome {
        case .success(.begin(let stepRun, .execute)):
            counters.executes.add(1, ordering: .relaxed)
            claimed = stepRun.id
            return nil
        case .success(.begin(let stepRun, .skip)):
            // Another delivery claimed it: it is running or already completed, never pending or failed.
            return stepRun.status == .running || stepRun.status == .completed
                ? nil : "skip on a step run that is \(stepRun.status.rawValue)"
        default:
            counters.failedClaims.add(1, ordering: .relaxed)
            return unexpected(outcome, "begin → execute or skip")
        }
    }
}

/// Runs with completed steps, written before the measurement, for the read scenario.
struct ReadDataset: Sendable {
    var runIDs: [UUID]
    var steps: [String]
    var payloadBytes: Int
}

/// get_step_run of a random step of a random run, then step_statuses of a random run, and so on.
struct ReadMix: Workload {
    let dataset: ReadDataset
    private var random: SplitMix64
    private var statusesNext = false

    init(dataset: ReadDataset, seed: UInt64) {
        self.dataset = dataset
        self.random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(UInt32.random(in: 0...UInt32.max)))
    }

    mutating func next() -> StoreRequest {
        statusesNext.toggle()
        let runID = dataset.runIDs[Int(random.next() % UInt64(dataset.runIDs.count))]
        if statusesNext {
            return .stepStatuses(runID: runID)
        }
        return .getStepRun(runID: runID, step: dataset.steps[Int(random.next() % UInt64(dataset.steps.count))])
    }

    mutating func check(_ outcome: Result<StoreResult, StepRunError>) -> String? {
        switch outcome {
        case .success(.foundStepRun(let stepRun?)) where stepRun.status == .completed:
            return nil
        case .success(.statuses(let statuses, nil)) where statuses.count == dataset.steps.count:
            return nil
        default:
            return unexpected(outcome, "a prepared step run or all its statuses")
        }
    }
}

/// schedule_steps of `width` steps on a fresh run, then begin_step and complete_step for each in turn.
struct FanOut: Workload {
    var payloads: PayloadSet
    let width: Int
    private var runID = UUID.v7()
    private var phase = Phase.schedule

    private enum Phase {
        case schedule
        case begin(Int)
        case complete(Int, UUID)
    }

    init(payloads: PayloadSet, width: Int) {
        self.payloads = payloads
        self.width = width
    }

    private static func name(_ index: Int) -> String { "branch-\(index)" }

    mutating func next() -> StoreRequest {
        switch phase {
        case .schedule:
            runID = UUID.v7()
            let steps = (0..<width).map { ScheduledStep(step: Self.name($0), input: payloads.next()) }
            return .scheduleSteps(runID: runID, steps: steps)
        case .begin(let index):
            // A scheduled step keeps the input it was scheduled with; the delivery sends none.
            return .beginStep(runID: runID, step: Self.name(index), input: .empty, recovery: nil)
        case .complete(_, let id):
            return .completeStep(stepRunID: id, output: payloads.next())
        }
    }

    mutating func check(_ outcome: Result<StoreResult, StepRunError>) -> String? {
        switch (phase, outcome) {
        case (.schedule, .success(.scheduledSteps(let names))) where names.count == width:
            phase = .begin(0)
            return nil
        case (.begin(let index), .success(.begin(let stepRun, .execute))):
            phase = .complete(index, stepRun.id)
            return nil
        case (.complete(let index, _), .success(.stepRun(let stepRun))) where stepRun.status == .completed:
            phase = index + 1 < width ? .begin(index + 1) : .schedule
            return nil
        default:
            let expectation: String
            switch phase {
            case .schedule: expectation = "\(width) newly scheduled steps"
            case .begin: expectation = "begin → execute on a scheduled step"
            case .complete: expectation = "a completed step run"
            }
            phase = .schedule
            return unexpected(outcome, expectation)
        }
    }
}

/// A tiny deterministic generator, so picking a random row costs nothing next to the call itself.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
