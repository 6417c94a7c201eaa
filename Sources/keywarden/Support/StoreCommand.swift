import Foundation
import KeywardenApp
import KeywardenStore

extension GlobalOptions {
    /// Opens the initialised store with its services, runs `body`, and closes the store whatever happens.
    func withStore<R>(_ body: (AppServices) async throws -> R) async throws -> R {
        let logger = makeLogger()
        let (app, _) = try await AppServices.open(try storeConfiguration(), createIfMissing: false, logger: logger)
        do {
            let result = try await body(app)
            await app.close()
            return result
        } catch {
            await app.close()
            throw error
        }
    }
}

/// Reads a secret without putting it on the command line: from a file, from standard input, or
/// from the terminal with echo off.
enum SecretInput {
    static func read(file: String?, prompt: String) throws -> String {
        if let file {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if isatty(STDIN_FILENO) == 1 {
            FileHandle.standardError.write(Data(prompt.utf8))
            var original = termios()
            tcgetattr(STDIN_FILENO, &original)
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &silent)
            defer {
                tcsetattr(STDIN_FILENO, TCSANOW, &original)
                FileHandle.standardError.write(Data("\n".utf8))
            }
            return (Swift.readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
        }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
