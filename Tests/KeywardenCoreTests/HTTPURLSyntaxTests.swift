import Foundation
import Testing
@testable import KeywardenCore

@Suite("HTTP URL syntax")
struct HTTPURLSyntaxTests {
    @Test("RFC 3986 http(s) URLs in ASCII are accepted, and every one of them is a URL Foundation reads with its host")
    func accepted() {
        for text in ["http://a", "https://api.openai.com/v1", "HTTP://Example.COM:443/x", "http://u:p@h.example", "http://@h.example",
                     "http://[::1]:11434", "http://[::ffff:127.0.0.1]/v1", "http://[2606:4700::1111]", "http://127.1", "http://0x7f.1",
                     "http://a.b/p%20q?x=1&y=%2F;z#frag?/", "http://a.b:0", "http://a.b:65535", "http://a_b.c-d~e", "http://t*",
                     "https://my-resource.openai.azure.com/", "http://a.b/?", "http://a.b#"] {
            #expect(HTTPURLSyntax.isValid(text), "\(text)")
            let url = URL(string: text)
            #expect(url?.host != nil && ["http", "https"].contains(url?.scheme?.lowercased() ?? ""), "\(text)")
        }
    }

    @Test("anything Foundation would quietly rewrite, and anything that is not an http(s) URL with a host, is refused")
    func refused() {
        for text in ["", "http://", "http://:80", "https:/a.b", "http:a.b", "ftp://a.b", " http://a.b", "http://a.b ", "http://a b",
                     "http://a.b/x y", "http://a.b/{x}", "http://a.b/|", "http://a.b/\\", "http://ä.b", "http://a.b/é", "http://a.b/%zz",
                     "http://a.b/%4", "http://a.b:65536", "http://a.b:", "http://a.b:8x", "http://a.b:123456", "http://[::1",
                     "http://[1::2::3]", "http://[v1.fe]", "http://[]", "http://[::1]x", "http://[fe80::1%25eth0]", "http://a.b#x#y",
                     "http://a@b@c", "http://a.b/\u{0}", "http://a.b\n", "http://%41.b", "http://a.b\t/"] {
            #expect(!HTTPURLSyntax.isValid(text), "\(text.debugDescription)")
        }
    }
}

@Suite("Card field values")
struct CardFieldValueTests {
    @Test("a text extra is one line by byte (CRLF inside is refused), a URL extra is judged by HTTPURLSyntax once trimmed; lengths in code points")
    func values() throws {
        let custom = try #require(try ProviderCatalog.load().provider("custom"))
        func accepted(_ extras: [String: String]) -> Bool {
            (try? custom.validateExtras(extras.mapValues { Secret($0) })) != nil
        }
        #expect(accepted(["auth_prefix": "Bearer x", "base_url": " https://api.example.com/v1\n"]))
        #expect(accepted(["auth_prefix": "\r\nToken\r\n"]))
        #expect(!accepted(["auth_prefix": "a\r\nb"]))
        #expect(!accepted(["auth_prefix": "a\nb"]))
        #expect(!accepted(["base_url": "https://api.example.com/a b"]))
        #expect(accepted(["auth_prefix": String(repeating: "é", count: 4096)]))
        #expect(!accepted(["auth_prefix": String(repeating: "é", count: 4097)]))
        #expect((try? custom.validateKey(Secret(String(repeating: "é", count: 4096)))) != nil)
        #expect((try? custom.validateKey(Secret(String(repeating: "a", count: 4097)))) == nil)
    }
}
