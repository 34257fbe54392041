use super::*;
pub(crate) fn build(b: TransactionBuilder) -> Result<Transaction> {
    Ok(Transaction {
        id: uuid::Uuid::new_v4().to_string(),
        b,
    })
}
pub(crate) async fn run(_t: &Transaction, _dry: bool) -> Result<Report> {
    Err(crate::Error::invalid(
        "transaction",
        "engine not written yet",
    ))
}
