//! A sandbox's rows, read and written behind the server's back: what the
//! HTTP answers do not show, and the states a test has to set up by hand.

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use super::{Sandbox, block_on};

impl Sandbox {
    /// How many images the database holds.
    pub fn count_rows(&self) -> i64 {
        self.sql_i64("SELECT COUNT(*) AS n FROM images")[0]
    }

    /// The first column of every row of `query`, as integers.
    pub fn sql_i64(&self, query: &str) -> Vec<i64> {
        block_on(async {
            let db = Database::connect(&self.database_url).await.unwrap();
            db.query_all_raw(Statement::from_string(db.get_database_backend(), query))
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get_by_index::<i64>(0).unwrap())
                .collect()
        })
    }

    /// The first column of every row of `query`, as text.
    pub fn sql_text(&self, query: &str) -> Vec<String> {
        block_on(async {
            let db = Database::connect(&self.database_url).await.unwrap();
            db.query_all_raw(Statement::from_string(db.get_database_backend(), query))
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect()
        })
    }

    /// The first column of the first row of `query`: None when there is
    /// no row or the value is NULL.
    pub fn scalar(&self, query: &str) -> Option<String> {
        block_on(async {
            let db = Database::connect(&self.database_url).await.unwrap();
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), query))
                .await
                .unwrap()?;
            row.try_get_by_index::<Option<String>>(0).unwrap()
        })
    }

    /// Runs `statements` (one or several, `;`-separated) for their effect.
    pub fn execute(&self, statements: &str) {
        block_on(async {
            let db = Database::connect(&self.database_url).await.unwrap();
            db.execute_unprepared(statements).await.unwrap();
        });
    }

    /// Which kind of database the sandbox uses.
    pub fn backend(&self) -> DbBackend {
        if self.database_url.starts_with("sqlite:") {
            DbBackend::Sqlite
        } else {
            DbBackend::Postgres
        }
    }
}
