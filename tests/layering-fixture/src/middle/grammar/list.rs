pub fn list() {
    super::value::value();
}
