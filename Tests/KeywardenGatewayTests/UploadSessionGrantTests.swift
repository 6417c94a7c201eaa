import Foundation
import Testing
@testable import KeywardenGateway

/// The grant a resumable upload's session URL carries: exact, short-lived, for uploads only.
@Suite("Upload session grants")
struct UploadSessionGrantTests {
    /// A stand-in signer (the real one is the vault's derived key): any deterministic MAC of the text.
    static func sign(_ text: String) -> String? { String(text.hashValue, radix: 16) + "-" + String(text.utf8.count) }

    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func grant(path: String = "/upload/v1beta/files", uploadID: String = "abc", workspace: String? = "ws_1", expires: Int? = nil) -> UploadSessionGrant {
        UploadSessionGrant(providerID: "gemini", workspaceID: workspace, path: path, uploadID: uploadID,
                           expires: expires ?? Int(now.timeIntervalSince1970) + UploadSessionGrant.lifetime)
    }

    @Test("a grant verifies for its own provider, path and upload, and for nothing else")
    func exact() throws {
        let text = try #require(grant().encoded(sign: Self.sign))
        #expect(UploadSessionGrant.verify(text, providerID: "gemini", path: "/upload/v1beta/files", uploadID: "abc", now: now, sign: Self.sign) == grant())
        #expect(UploadSessionGrant.verify(text, providerID: "openai", path: "/upload/v1beta/files", uploadID: "abc", now: now, sign: Self.sign) == nil)
        #expect(UploadSessionGrant.verify(text, providerID: "gemini", path: "/upload/v1/files", uploadID: "abc", now: now, sign: Self.sign) == nil)
        #expect(UploadSessionGrant.verify(text, providerID: "gemini", path: "/upload/v1beta/files", uploadID: "abd", now: now, sign: Self.sign) == nil)
        #expect(UploadSessionGrant.verify(text, providerID: "gemini", path: "/upload/v1beta/files", uploadID: nil, now: now, sign: Self.sign) == nil)
        // Another workspace, or none (a platform call), in the text: the signature no longer holds.
        for forged in [text.replacingOccurrences(of: ".ws_1.", with: ".ws_2."), text.replacingOccurrences(of: ".ws_1.", with: ".-.")] {
            #expect(UploadSessionGrant.verify(forged, providerID: "gemini", path: "/upload/v1beta/files", uploadID: "abc", now: now, sign: Self.sign) == nil)
        }
    }

    @Test("a grant for a path that is no upload is neither made nor accepted; an expired one, or one that claims to last beyond the lifetime, is refused")
    func boundedInPathAndTime() throws {
        let chat = try #require(grant(path: "/v1/chat/completions").encoded(sign: Self.sign))
        #expect(UploadSessionGrant.verify(chat, providerID: "gemini", path: "/v1/chat/completions", uploadID: "abc", now: now, sign: Self.sign) == nil)
        let seconds = Int(now.timeIntervalSince1970)
        for expires in [seconds - 1, seconds + UploadSessionGrant.lifetime + 3600, Int(Int32.max)] {
            let text = try #require(grant(expires: expires).encoded(sign: Self.sign))
            #expect(UploadSessionGrant.verify(text, providerID: "gemini", path: "/upload/v1beta/files", uploadID: "abc", now: now, sign: Self.sign) == nil, "\(expires)")
        }
    }

    @Test("the signed text is unambiguous: fields holding the separator cannot stand for other fields")
    func unambiguous() {
        let a = grant(path: "/upload/a|b", uploadID: "c")
        let b = grant(path: "/upload/a", uploadID: "b|c")
        #expect(a.signed != b.signed)
    }
}
