import Foundation
import StepRunClient
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

@Suite("Handshake")
struct HandshakeTests {
    @Test("TCP with a wrong token is UNAUTHENTICATED and the connection closes")
    func wrongToken() async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(.tcp, token: "not-the-token")
        #expect(await storeError { try await client.connect() }?.code == .unauthenticated)
        await client.close()
    }

    @Test("TCP without a token is UNAUTHENTICATED")
    func missingToken() async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, .tcp)
        try await raw.send(RequestFrame(id: 1, call: .hello(Hello(clientName: "raw", token: nil))))
        let response = try await raw.receive()
        #expect(response?.id == 1)
        if case .failure(let error)? = response?.outcome { #expect(error.code == .unauthenticated) } else { Issue.record("expected an error") }
        #expect(try await raw.receive() == nil)
        await raw.close()
    }

    @Test("the Unix socket needs no token")
    func unixNeedsNoToken() async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        await raw.close()
    }

    @Test("an unsupported protocol version is FAILED_PRECONDITION and the connection closes", arguments: Transport.allCases)
    func badVersion(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.send(RequestFrame(id: 7, call: .hello(Hello(protocolVersion: 99, clientName: "future", token: daemon.token))))
        let response = try await raw.receive()
        #expect(response?.id == 7)
        if case .failure(let error)? = response?.outcome { #expect(error.code == .failedPrecondition) } else { Issue.record("expected an error") }
        #expect(try await raw.receive() == nil)
        await raw.close()
    }

    @Test("a request before Hello is FAILED_PRECONDITION and the connection closes", arguments: Transport.allCases)
    func requestBeforeHello(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.send(RequestFrame(id: 3, call: .store(.completedSteps(runID: UUID()))))
        let response = try await raw.receive()
        if case .failure(let error)? = response?.outcome { #expect(error.code == .failedPrecondition) } else { Issue.record("expected an error") }
        #expect(try await raw.receive() == nil)
        await raw.close()
    }

    @Test("a Hello with id 0 is INVALID_ARGUMENT naming id, answered with id 0, and the connection closes", arguments: Transport.allCases)
    func helloWithIDZero(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.send(RequestFrame(id: 0, call: .hello(Hello(clientName: "raw", token: daemon.token))))
        let response = try #require(try await raw.receive())
        #expect(response.id == 0)
        if case .failure(.invalidArgument(let field, _)) = response.outcome { #expect(field == "id") } else { Issue.record("expected INVALID_ARGUMENT, got \(response.outcome)") }
        #expect(try await raw.receive() == nil)
        await raw.close()
    }

    @Test("a second Hello is FAILED_PRECONDITION with its id and the connection keeps serving", arguments: Transport.allCases)
    func secondHello(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.hello(token: daemon.token)
        try await raw.send(RequestFrame(id: 2, call: .hello(Hello(clientName: "again", token: daemon.token))))
        let response = try #require(try await raw.receive())
        #expect(response.id == 2)
        if case .failure(let error) = response.outcome { #expect(error.code == .failedPrecondition) } else { Issue.record("expected an error") }
        try await raw.send(RequestFrame(id: 3, call: .health))
        let health = try #require(try await raw.receive())
        #expect(health.id == 3)
        guard case .success(.health) = health.outcome else {
            Issue.record("expected health, got \(health.outcome)")
            return
        }
        await raw.close()
    }
}
