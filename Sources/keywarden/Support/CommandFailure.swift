import ArgumentParser
import Foundation

/// Runs a command body; a failure prints one line, `keywarden: <what is wrong and what to do>`, and exits 1.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as CleanExit {
        throw error
    } catch {
        let message = String(describing: error)
        FileHandle.standardError.write(Data("keywarden: \(message)\n".utf8))
        throw ExitCode(1)
    }
}

/// Writes a line to standard output.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
