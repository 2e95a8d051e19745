use leaderboard::{vercel, Route};

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    vercel::run(Route::ScoreHistory).await
}
