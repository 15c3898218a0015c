import ArgumentParser
import Foundation
import StepRunClient

/// Where and how to reach steprund. Flag names and environment variables are steprund's own, so one
/// environment file can serve both.
struct ConnectionOptions: ParsableArguments {
    static let defaultUnixSocket = "/run/steprund/steprund.sock"
    static let defaultTimeout = CallTimeout(duration: .seconds(10), text: "10s")

    @Option(
        name: .customLong("unix-socket"), help: ArgumentHelp(
            "steprund's Unix socket (env STEPRUN_UNIX_SOCKET; default \(Self.defaultUnixSocket)).", valueName: "path"))
    var unixSocket: String?

    @Option(help: ArgumentHelp("Connect over TCP to HOST:PORT instead (env STEPRUN_TCP).", valueName: "host:port"))
    var tcp: TCPAddress?

    @Option(
        name: .customLong("token-file"),
        help: ArgumentHelp("File holding the token for TCP (env STEPRUN_TOKEN_FILE).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Give up on connecting and on each call after this long, e.g. 500ms, 5s, 2m.", valueName: "duration"))
    var timeout: CallTimeout = Self.defaultTimeout

    @OptionGroup(title: "TLS (TCP only)")
    var tls: TLSOptions

    func validate() throws {
        if unixSocket != nil && tcp != nil {
            throw ValidationError("--unix-socket and --tcp are mutually exclusive")
        }
        if unixSocket != nil && tls.givenAsFlag {
            throw ValidationError("the --tls options apply to --tcp only, not to --unix-socket")
        }
    }

    /// Resolves the daemon's address: flags first, then the environment, then the default socket.
    ///
    /// With no flag, STEPRUN_UNIX_SOCKET wins over STEPRUN_TCP: steprund's environment file often
    /// sets both, and a co-located operator should not need the token.
    func target(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StepRunClient.Target {
        func env(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        if let unixSocket { return .unix(path: unixSocket) }
        let address: TCPAddress
        if let tcp {
            address = tcp
        } else if let path = env("STEPRUN_UNIX_SOCKET") {
            return .unix(path: path)
        } else if let text = env("STEPRUN_TCP") {
            guard let parsed = TCPAddress(argument: text) else {
                throw CtlError(.usage, "STEPRUN_TCP must be HOST:PORT, got \"\(text)\"")
            }
            address = parsed
        } else {
            return .unix(path: Self.defaultUnixSocket)
        }
        let token = try (tokenFile ?? env("STEPRUN_TOKEN_FILE")).map(Self.readToken)
        return .tcp(host: address.host, port: address.port, token: token)
    }

    /// A client for the resolved target, with `timeout` for connecting and for every call, and TLS
    /// on TCP when a TLS option (flag or STEPRUNCTL_TLS_* variable) asks for it.
    func makeClient(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StepRunClient {
        let target = try target(environment: environment)
        var configuration = StepRunClient.Configuration(
            clientName: "steprunctl", defaultTimeout: timeout.duration, connectTimeout: timeout.duration)
        if case .tcp = target {
            if let resolved = try tls.resolve(environment: environment) {
                configuration.tls = try resolved.configuration()
                configuration.tlsServerName = resolved.serverName
            }
        } else if tls.givenAsFlag {
            // The address came from STEPRUN_UNIX_SOCKET (or the default): TLS was asked for but
            // cannot apply, and silently connecting in the clear would hide that.
            throw CtlError(.usage, "the --tls options apply to TCP only, but the daemon address resolved to \(target); give --tcp HOST:PORT")
        }
        return StepRunClient(target: target, configuration: configuration)
    }

    /// Reads the shared TCP token: the file's text without surrounding whitespace.
    static func readToken(_ path: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CtlError(.invalidArgument, "cannot read token file \(path): \(error.localizedDescription)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw CtlError(.invalidArgument, "token file \(path) is empty") }
        return token
    }
}

/// A TCP address in steprund's `--tcp` syntax: `host:port`, `[v6]:port` or `:port`.
struct TCPAddress: ExpressibleByArgument, Hashable {
    var host: String
    var port: Int

    init?(argument text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // steprund's listen address means "all interfaces"; a client reaches those over loopback.
        switch host {
        case "", "0.0.0.0": host = "127.0.0.1"
        case "::": host = "::1"
        default: break
        }
        self.host = host
        self.port = port
    }
}

/// How long to wait for the connection and for each call, in steprund's duration syntax.
struct CallTimeout: ExpressibleByArgument {
    var duration: Duration
    var text: String

    init(duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }

    /// `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds; must be positive.
    init?(argument text: String) {
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        let (number, scale) = units.first { text.hasSuffix($0.suffix) }
            .map { (Double(text.dropLast($0.suffix.count)), $0.milliseconds) } ?? (Double(text), 1000)
        guard let number, number.isFinite, number > 0 else { return nil }
        let milliseconds = number * scale
        guard milliseconds >= 1, milliseconds <= Double(UInt32.max) else { return nil }
        self.duration = .milliseconds(Int64(milliseconds))
        self.text = text
    }

    var defaultValueDescription: String { text }
}

extension ConnectionOptions {
    /// Runs `body` with a client for the resolved target, closing the connection afterwards.
    func withClient<Result>(_ body: (StepRunClient) async throws -> Result) async throws -> Result {
        let client = try makeClient()
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }
}
