import Dispatch
import Foundation
import StepRunCore
import StepRunPostgres
import Synchronization

/// The baseline: each client is an OS thread with its own libpq connection running the daemon's SQL.
///
/// Threads rather than tasks, because a blocking libpq call would hold one of the (here two)
/// Swift concurrency threads and starve every other client.
enum DirectDriver {
    static func run(
        plan: WorkloadPlan, clients: Int, configuration: PostgresConfiguration, timing: Timing, sampler: SystemSampler
    ) async throws -> WorkerTally {
        let connected = DispatchGroup()
        let finished = DispatchGroup()
        let gate = StartGate(clients: clients)
        // Connections stay open until the sampler's last look: a backend that exits just before it
        // would vanish from the Postgres CPU figures (its earlier CPU was counted at the start).
        let closeGate = StartGate(clients: clients)
        let tallies = Locked<[WorkerTally]>([])
        let failures = Locked<[String]>([])

        for index in 0..<clients {
            connected.enter()
            finished.enter()
            let thread = Thread {
                defer { finished.leave() }
                let connection: DirectConnection
                do throws(StepRunError) {
                    connection = try DirectConnection(configuration: configuration)
                } catch {
                    failures.withLock { $0.append(describe(error)) }
                    connected.leave()
                    return
                }
                connected.leave()
                guard let window = gate.wait() else {
                    connection.close()
                    return
                }
                let tally = clientLoop(plan: plan, index: index, window: window, connection: connection)
                tallies.withLock { $0.append(tally) }
                _ = closeGate.wait()
                connection.close()
            }
            thread.name = "steprun-bench-direct-\(index)"
            thread.start()
        }

        await wait(connected)
        if let failure = failures.withLock({ $0.first }) {
            gate.open(nil)
            await wait(finished)
            throw BenchError("cannot open \(clients) direct connections to Postgres: \(failure)")
        }
        let window = RunWindow(startingAt: .now, warmup: timing.warmup, duration: timing.duration)
        sampler.start(window)
        gate.open(window)
        _ = await sampler.finish()
        closeGate.open(window)
        await wait(finished)
        return tallies.withLock { all in
            all.reduce(into: WorkerTally()) { $0.merge($1) }
        }
    }

    private static func clientLoop(plan: WorkloadPlan, index: Int, window: RunWindow, connection: DirectConnection) -> WorkerTally {
        var workload = plan.makeWorkload(client: index)
        var tally = WorkerTally()
        while ContinuousClock.now < window.end {
            let request = workload.next()
            let started = ContinuousClock.now
            let outcome: Result<StoreResult, StepRunError>
            do {
                outcome = .success(try connection.perform(request))
            } catch {
                outcome = .failure(error)
            }
            let finished = ContinuousClock.now
            let problem = workload.check(outcome)
            tally.record(operation: request.operationName, started: started, finished: finished, window: window, problem: problem)
            if case .failure = outcome {
                // A dead connection fails instantly; do not spin on it.
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        return tally
    }
}

/// Holds the client threads until every connection is open, then releases them with the run's window.
final class StartGate: Sendable {
    private let clients: Int
    private let window = Mutex<RunWindow?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    init(clients: Int) {
        self.clients = clients
    }

    /// Releases every waiting client; nil tells them to give up.
    func open(_ window: RunWindow?) {
        self.window.withLock { $0 = window }
        for _ in 0..<clients { semaphore.signal() }
    }

    func wait() -> RunWindow? {
        semaphore.wait()
        return window.withLock { $0 }
    }
}

/// Suspends the calling task (not a thread) until the group is empty.
func wait(_ group: DispatchGroup) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        group.notify(queue: .global()) { continuation.resume() }
    }
}

/// A value shared between threads behind a lock (a class, so escaping closures can capture it).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result {
        mutex.withLock { body(&$0) }
    }
}

/// Warm-up and measured duration of every run, and how long a call may take.
struct Timing: Sendable {
    var warmup: Duration
    var duration: Duration
    /// The deadline sent with each daemon call, and the baseline's statement timeout.
    var callTimeout: Duration
}

/// A failure that stops the benchmark, with a message for the person running it.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
