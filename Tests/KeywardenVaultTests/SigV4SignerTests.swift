import Foundation
import KeywardenCore
import Testing
@testable import KeywardenVault

/// AWS Signature Version 4 against AWS's published vectors (the SigV4 test suite and S3's documented example).
@Suite("SigV4 signer")
struct SigV4SignerTests {
    static let suite = SigV4Signer(credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")),
                                   region: "us-east-1", service: "service")
    /// 2015-08-30T12:36:00Z, the suite's time.
    static let suiteTime = Date(timeIntervalSince1970: 1_440_938_160)

    static func authorization(_ headers: [(String, String)]) -> String { headers.first { $0.0 == "authorization" }?.1 ?? "" }

    @Test("the test suite's get-vanilla, get-vanilla-query-order-key-case and post-vanilla")
    func testSuiteVectors() {
        let host = [("Host", "example.amazonaws.com")]
        let vanilla = Self.suite.sign(method: "GET", path: "/", headers: host, body: [], at: Self.suiteTime)
        #expect(vanilla.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(Self.authorization(vanilla) == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        let ordered = Self.suite.sign(method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")], headers: host, body: [],
                                      at: Self.suiteTime)
        #expect(Self.authorization(ordered).hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"))
        let post = Self.suite.sign(method: "POST", path: "/", headers: host, body: [], at: Self.suiteTime)
        #expect(Self.authorization(post).hasSuffix("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"))
    }

    @Test("S3's documented GET Object (a range, the payload's hash signed as a header)")
    func s3Example() {
        let s3 = SigV4Signer(credentials: .init(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")),
                             region: "us-east-1", service: "s3")
        let headers = s3.sign(method: "GET", path: "/test.txt", headers: [
            ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ], body: [], at: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(Self.authorization(headers) == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("temporary credentials send and sign their session token; the secret access key is in no header")
    func sessionTokenAndNoSecret() {
        let signer = SigV4Signer(credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("canary-secret-access-key-7781"),
                                                    sessionToken: Secret("session-token-42")), region: "eu-west-1", service: "kms")
        let headers = signer.sign(method: "POST", path: "/", headers: [("Host", "kms.eu-west-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.1"),
                                                                      ("X-Amz-Target", "TrentService.Encrypt")],
                                  body: Array(#"{"KeyId":"alias/keywarden"}"#.utf8), at: Self.suiteTime)
        #expect(headers.first { $0.0 == "x-amz-security-token" }?.1 == "session-token-42")
        #expect(Self.authorization(headers).contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"))
        #expect(!headers.contains { $0.1.contains("canary-secret-access-key-7781") })
        // A different body is a different signature (the payload is signed).
        let other = signer.sign(method: "POST", path: "/", headers: [("Host", "kms.eu-west-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.1"),
                                                                    ("X-Amz-Target", "TrentService.Encrypt")],
                                body: Array(#"{"KeyId":"alias/other"}"#.utf8), at: Self.suiteTime)
        #expect(Self.authorization(other) != Self.authorization(headers))
    }

    @Test("paths and query values are encoded as RFC 3986 says, segment by segment")
    func encoding() {
        #expect(SigV4Signer.canonicalPath("") == "/")
        #expect(SigV4Signer.canonicalPath("/a b/ü~.-_") == "/a%20b/%C3%BC~.-_")
        #expect(SigV4Signer.encode("a+b=c&d/é") == "a%2Bb%3Dc%26d%2F%C3%A9")
        #expect(SigV4Signer.trimmed("  a   b  ") == "a b")
    }
}
