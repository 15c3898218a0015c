/// A prepared statement together with its parameters: one statement ready to send, alone
/// (`PGConnection.send`) or as one step of a pipeline (`PGConnection.sendPipeline`).
struct BoundStatement: Sendable {
    var prepared: PreparedStatement
    var parameters: [PGParameter?]

    init(_ prepared: PreparedStatement, _ parameters: [PGParameter?]) {
        self.prepared = prepared
        self.parameters = parameters
    }
}
