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

/// Lines set apart between two rules, indented, so the one that matters (a token) is easy to find and to copy whole.
func sayBoxed(_ lines: [String]) {
    let width = min(100, (lines.map(\.count).max() ?? 0) + 4)
    let rule = String(repeating: "=", count: width)
    say("")
    say(rule)
    for line in lines { say(line.isEmpty ? "" : "  " + line) }
    say(rule)
    say("")
}
