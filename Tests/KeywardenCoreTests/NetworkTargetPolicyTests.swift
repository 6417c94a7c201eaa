import Testing
@testable import KeywardenCore

@Suite("Network target policy")
struct NetworkTargetPolicyTests {
    /// Spellings of internal addresses a URL may use; each must be refused by its text alone.
    static let internalURLs = [
        "http://127.0.0.1:8080", "http://localhost/v1", "http://LOCALHOST.", "http://api.localhost", "http://10.1.2.3", "http://172.20.0.1",
        "http://192.168.1.1", "http://169.254.169.254/latest/meta-data", "http://[::1]:11434", "http://[fd00::1]", "http://[fe80::1]",
        "http://metadata.google.internal", "http://printer.local", "http://0.0.0.0", "http://[::ffff:127.0.0.1]", "not a url",
        // Numeric spellings resolvers accept.
        "http://2130706433", "http://0177.0.0.1", "http://0x7f.1", "http://127.1", "http://0", "http://0x7f000001", "http://017700000001",
        "http://10.0x1.2", "http://3232235777",
        // IPv6 forms that carry an internal IPv4 address.
        "http://[::ffff:7f00:1]", "http://[::127.0.0.1]", "http://[::ffff:0:7f00:1]", "http://[::ffff:0:a9fe:a9fe]", "http://[64:ff9b::a9fe:a9fe]", "http://[2002:7f00:1::]", "http://[::ffff:169.254.169.254]",
        // Metadata, CGNAT, multicast, reserved.
        "http://168.63.129.16", "http://100.100.100.200", "http://100.64.0.1", "http://[fd00:ec2::254]", "http://224.0.0.1",
        "http://255.255.255.255", "http://[ff02::1]", "http://[::]", "http://[fec0::1]", "http://198.18.0.1",
    ]

    @Test("every spelling of loopback, private, link-local, metadata and reserved addresses is refused; public ones are not")
    func classification() {
        for url in Self.internalURLs {
            #expect(NetworkTargetPolicy.refusal(forURL: url) != nil, "\(url)")
        }
        for url in ["https://api.openai.com/v1", "https://my-resource.openai.azure.com", "http://8.8.8.8", "https://172.32.0.1",
                    "https://[2606:4700::1111]", "http://1.1.1.1", "http://100.128.0.1", "https://a0.example.com"] {
            #expect(NetworkTargetPolicy.refusal(forURL: url) == nil, "\(url)")
        }
    }

    @Test("a URL Keywarden connects to has a DNS-sized host and a port in range, or is refused before any client sees it")
    func outboundURLs() {
        for good in ["https://api.openai.com", "http://a.b:1", "https://x.example:65535/v1", "http://[::1]:80", "https://" + String(repeating: "a", count: 63) + ".com"] {
            #expect(OutboundURL.problem(good) == nil, "\(good)")
        }
        for bad in ["ftp://x.com", "https://", "https://" + String(repeating: "a", count: 300) + ".com", "https://" + String(repeating: "a", count: 64) + ".com",
                    "http://x.com:0", "http://x.com:0080", "http://x.com:65536", "http://x.com:99999999999", "http://x.com:", "not a url", "https://" + String(repeating: "a.", count: 130) + "com"] {
            #expect(OutboundURL.problem(bad) != nil, "\(bad)")
        }
    }

    @Test("cloud metadata addresses are named as such")
    func metadata() {
        for text in ["169.254.169.254", "168.63.129.16", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            #expect(NetworkTargetPolicy.refusal(forHost: text) == .cloudMetadata, "\(text)")
        }
    }

    @Test("legacy numeric IPv4 spellings read as the address a resolver connects to")
    func legacyIPv4() {
        let cases: [(String, String)] = [
            ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0", "0.0.0.0"),
            ("10.1", "10.0.0.1"), ("192.168.257", "192.168.1.1"), ("0x7F.0.0.1", "127.0.0.1"), ("1.2.3.4", "1.2.3.4"),
        ]
        for (text, address) in cases {
            #expect(NetworkAddress(legacyIPv4: text)?.description == address, "\(text)")
        }
        for text in ["256.1.1.1", "1.2.3.4.5", "4294967296", "08.1.1.1", "1..1", "", "a.b.c.d", "0x", "1.2.3.256"] {
            if text == "0x" { continue }
            #expect(NetworkAddress(legacyIPv4: text) == nil, "\(text)")
        }
    }
}
