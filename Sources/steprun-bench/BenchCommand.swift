import ArgumentParser
import Foundation
import StepRunClient
import StepRunCore
import StepRunPostgres

/// `steprun-bench`: runs store scenarios against steprund and, in the same invocation, against
/// Postgres directly (the daemon's SQL over libpq, one connection per client), and compares them.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steprun-bench",
        abstract: "Load generator and side-by-side benchmark: steprund versus its own SQL run directly on Postgres.",
        discussion: """
            Every list option takes comma-separated values and the benchmark runs each combination. For each \
            scenario, client count and payload size the targets run back to back (default: the direct \
            Postgres baseline, then the daemon), so ratios compare runs that shared the same machine state. \
            An op is one store call; a claim-complete cycle is two ops. See docs/PERFORMANCE.md.
            """)

    @Option(help: "Scenarios: claim-complete, claim-contended, read, fan-out, or all.")
    var scenario = "claim-complete"

    @Option(help: "Targets in the order they run: postgres (direct libpq baseline) and/or daemon.")
    var target = "postgres,daemon"

    @Option(help: "Daemon transports: unix and/or tcp.")
    var transport = "unix"

    @Option(help: "Concurrent clients, e.g. 1,8,32,128.")
    var clients = "1"

    @Option(help: "Client connections to the daemon, shared by the clients (default: one per client).")
    var connections: Int?

    @Option(
        name: .customLong("client-tasks"),
        help: "Where the daemon clients' tasks run: event-loop (on their connection's loop, no thread hop per call) or pool (the Swift concurrency pool).")
    var clientTasks = ClientTasks.eventLoop

    @Option(help: "Seconds measured per run.")
    var duration: Double = 10

    @Option(help: "Seconds of warm-up before each measurement (calls made then are not counted).")
    var warmup: Double = 2

    @Option(help: "Seconds of rest between runs.")
    var pause: Double = 1

    @Option(help: "Seconds each call may take: the deadline sent to the daemon, the baseline's statement timeout.")
    var timeout: Double = 30

    @Option(name: .customLong("payload-bytes"), help: "Size of each JSON payload (input, output), e.g. 100,10KiB,1MiB.")
    var payloadBytes = "100"

    @Option(name: .customLong("database-url"), help: "libpq URL of the database: the baseline target, schema migration, read-scenario data.")
    var databaseURL: String?

    @Option(help: "Postgres schema holding steprund's tables.")
    var schema = "steprun"

    @Option(name: .customLong("unix-socket"), help: "steprund's Unix socket (for --transport unix).")
    var unixSocket: String?

    @Option(help: "steprund's TCP address HOST:PORT (for --transport tcp).")
    var tcp: String?

    @Option(name: .customLong("token-file"), help: "File holding the TCP token.")
    var tokenFile: String?

    @Option(name: .customLong("daemon-pid"), help: "steprund's process id: samples its RSS and CPU during each run.")
    var daemonPID: Int32?

    @Option(name: .customLong("postgres-pid"), help: "The postmaster's process id: samples Postgres CPU (all backends) during each run.")
    var postgresPID: Int32?

    @Option(help: "claim-contended: deliveries of each step that race for it.")
    var deliveries = 8

    @Option(name: .customLong("fan-out-width"), help: "fan-out: steps scheduled per run.")
    var fanOutWidth = 20

    @Option(name: .customLong("read-runs"), help: "read: runs prepared before measuring.")
    var readRuns = 100

    @Option(name: .customLong("read-steps"), help: "read: completed steps per prepared run.")
    var readSteps = 10

    @Flag(help: "Print one JSON object per run on standard output (the human summary goes to standard error).")
    var json = false

    func validate() throws {
        _ = try plan()
    }

    func run() async throws {
        let plan = try plan()
        let output = Output(json: json)
        output.human(plan.header)
        if let databaseURL {
            let report = try await SchemaMigrator.migrate(configuration: postgresConfiguration(databaseURL))
            if report.from != report.to { output.human("migrated schema \(schema) from version \(report.from) to \(report.to)") }
        }

        var datasets: [Int: ReadDataset] = [:]
        var records: [RunRecord] = []
        for payload in plan.payloads {
            for scenario in plan.scenarios {
                if scenario == .read, datasets[payload] == nil {
                    output.human("preparing read data: \(readRuns) runs × \(readSteps) completed steps, \(Summary.bytes(payload)) payloads")
                    datasets[payload] = try await prepareReadDataset(payloadBytes: payload, plan: plan)
                }
                for clientCount in plan.clientCounts {
                    for runTarget in plan.runTargets {
                        let record = try await measure(
                            scenario: scenario, target: runTarget, clients: clientCount, payload: payload,
                            dataset: datasets[payload], plan: plan)
                        records.append(record)
                        output.run(record)
                        if pause > 0 { try await Task.sleep(for: .milliseconds(Int64(pause * 1000))) }
                    }
                }
            }
        }
        output.human("")
        output.human(Summary.comparison(records))
        output.human("")
        output.human(Summary.cpuTable(records))
        let errors = records.reduce(0) { $0 + $1.errors }
        if errors > 0 {
            output.human("\n\(errors) calls failed or answered unexpectedly; see the error samples above")
            throw ExitCode(3)
        }
    }

    // MARK: One run

    private func measure(
        scenario: Scenario, target: RunTarget, clients: Int, payload: Int, dataset: ReadDataset?, plan: Plan
    ) async throws -> RunRecord {
        let workload = WorkloadPlan(
            scenario: scenario, payloads: PayloadSet(bytes: payload), deliveries: deliveries, fanOutWidth: fanOutWidth,
            dataset: dataset)
        let sampler = SystemSampler(daemonPID: target.isDaemon ? daemonPID : nil, postgresPID: postgresPID)
        let timing = plan.timing
        var tally: WorkerTally
        let connectionCount: Int
        switch target {
        case .postgres:
            connectionCount = clients
            tally = try await DirectDriver.run(
                plan: workload, clients: clients, configuration: postgresConfiguration(databaseURL!, statementTimeout: timing.callTimeout),
                timing: timing, sampler: sampler)
        case .daemon(_, let clientTarget):
            connectionCount = min(connections ?? clients, clients)
            tally = try await DaemonDriver.run(
                plan: workload, clients: clients, connections: connectionCount, target: clientTarget, tasks: clientTasks,
                timing: timing, sampler: sampler)
        }
        if let violation = workload.contentionViolation() {
            tally.errors += 1
            tally.errorsByCode["EXACTLY_ONCE", default: 0] += 1
            tally.errorSamples.append(violation)
        }
        let observation = await sampler.finish()
        return RunRecord(
            scenario: scenario, target: target.name, transport: target.transport, clients: clients, connections: connectionCount,
            payloadBytes: payload, measured: timing.duration, tally: tally, observation: observation)
    }

    private func postgresConfiguration(_ url: String, statementTimeout: Duration = .seconds(30)) -> PostgresConfiguration {
        PostgresConfiguration(
            connectionString: url, schema: schema, poolSize: 1, statementTimeout: statementTimeout, applicationName: "steprun-bench")
    }

    // MARK: Read data

    /// Runs whose steps are all completed, written through the baseline connection when there is a
    /// database URL (so preparing does not warm the daemon), else through the daemon.
    private func prepareReadDataset(payloadBytes: Int, plan: Plan) async throws -> ReadDataset {
        let dataset = ReadDataset(
            runIDs: (0..<readRuns).map { _ in UUID.v7() }, steps: (0..<readSteps).map { "step-\($0)" }, payloadBytes: payloadBytes)
        let requests = ReadDataset.Writer(dataset: dataset)
        if let databaseURL {
            let configuration = postgresConfiguration(databaseURL)
            try await onOwnThread { () throws(StepRunError) in
                let connection = try DirectConnection(configuration: configuration)
                defer { connection.close() }
                try requests.write { request throws(StepRunError) in try connection.perform(request) }
            }
        } else if let daemon = plan.runTargets.first(where: \.isDaemon), case .daemon(_, let clientTarget) = daemon {
            let client = StepRunClient(target: clientTarget, configuration: .init(clientName: "steprun-bench"))
            do {
                try await requests.write { request in try await client.perform(request, deadline: nil) }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
        return dataset
    }
}

extension ReadDataset {
    /// The calls that fill a dataset: begin_step then complete_step for every step of every run.
    struct Writer: Sendable {
        let dataset: ReadDataset

        func write(_ perform: (StoreRequest) throws(StepRunError) -> StoreResult) throws(StepRunError) {
            var payloads = PayloadSet(bytes: dataset.payloadBytes)
            for runID in dataset.runIDs {
                for step in dataset.steps {
                    let begun = try perform(.beginStep(runID: runID, step: step, input: payloads.next(), recovery: nil))
                    guard case .begin(let stepRun, .execute) = begun else { throw .internal("preparing read data: \(begun)") }
                    _ = try perform(.completeStep(stepRunID: stepRun.id, output: payloads.next()))
                }
            }
        }

        func write(_ perform: (StoreRequest) async throws -> StoreResult) async throws {
            var payloads = PayloadSet(bytes: dataset.payloadBytes)
            for runID in dataset.runIDs {
                for step in dataset.steps {
                    let begun = try await perform(.beginStep(runID: runID, step: step, input: payloads.next(), recovery: nil))
                    guard case .begin(let stepRun, .execute) = begun else { throw StepRunError.internal("preparing read data: \(begun)") }
                    _ = try await perform(.completeStep(stepRunID: stepRun.id, output: payloads.next()))
                }
            }
        }
    }
}

/// Runs blocking work on a new thread and suspends the calling task until it is done.
func onOwnThread(_ body: @escaping @Sendable () throws(StepRunError) -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let thread = Thread {
            do throws(StepRunError) {
                try body()
                continuation.resume()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
}

/// Human lines go to standard output, or to standard error when JSON owns standard output.
struct Output {
    let json: Bool

    func human(_ text: String) {
        guard !text.isEmpty || !json else { return }
        (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((text + "\n").utf8))
    }

    func run(_ record: RunRecord) {
        human(Summary.line(record))
        if json {
            FileHandle.standardOutput.write(Data((record.json + "\n").utf8))
        }
    }
}
