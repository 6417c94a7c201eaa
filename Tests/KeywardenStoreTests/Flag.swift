/// Whether something happened, set by one task and read by another.
actor Flag {
    private(set) var isSet = false
    func set() { isSet = true }
}
