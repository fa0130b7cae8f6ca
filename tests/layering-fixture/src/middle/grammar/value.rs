pub fn value() {
    super::list::list();
}
