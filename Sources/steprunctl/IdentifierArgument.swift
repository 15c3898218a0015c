import ArgumentParser
import Foundation

/// Parses the UUID arguments (run ids, step run ids) in any letter case.
///
/// A malformed id is a usage error (exit 2), caught before anything is sent to the daemon.
enum IdentifierArgument {
    static func uuid(_ text: String) throws -> UUID {
        guard let uuid = UUID(uuidString: text) else {
            throw ValidationError("\"\(text)\" is not a UUID (expected e.g. 0193b1e2-7c1f-7a00-8000-000000000000)")
        }
        return uuid
    }
}
