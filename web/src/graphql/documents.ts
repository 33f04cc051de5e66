// Every GraphQL operation of the app, typed by GraphQL Codegen (npm run codegen) from the
// gateway's schema. Access per field is in api/schema.graphql.
import { graphql } from '../gql';

export const AccountFields = graphql(`
  fragment AccountFields on Account {
    id
    username
    fullName
    email
    role
    active
    createdAt
  }
`);

export const TaskFields = graphql(`
  fragment TaskFields on Task {
    id
    title
    jiraId
    description
    status
    createdAt
    completedAt
    assignee {
      id
      username
      fullName
    }
    price {
      fee
      reward
    }
  }
`);

export const EntryFields = graphql(`
  fragment EntryFields on LedgerEntry {
    id
    type
    amount
    balanceAfter
    description
    occurredAt
    day
    task {
      id
      title
      jiraId
      description
    }
  }
`);

export const AuthFields = graphql(`
  fragment AuthFields on AuthPayload {
    token
    expiresAt
    account {
      ...AccountFields
    }
  }
`);

export const LoginDocument = graphql(`
  mutation Login($username: String!, $password: String!) {
    login(username: $username, password: $password) {
      ...AuthFields
    }
  }
`);

export const SignUpDocument = graphql(`
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) {
      ...AuthFields
    }
  }
`);

export const RefreshSessionDocument = graphql(`
  mutation RefreshSession {
    refreshSession {
      ...AuthFields
    }
  }
`);

export const LogoutDocument = graphql(`
  mutation Logout {
    logout
  }
`);

export const MeDocument = graphql(`
  query Me {
    me {
      ...AccountFields
    }
  }
`);

export const ChangePasswordDocument = graphql(`
  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)
  }
`);

export const UpdateProfileDocument = graphql(`
  mutation UpdateProfile($fullName: String, $email: String) {
    updateProfile(fullName: $fullName, email: $email) {
      ...AccountFields
    }
  }
`);

// Task board (R-WEB-3).

export const TasksDocument = graphql(`
  query Tasks($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {
    tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          ...TaskFields
        }
      }
    }
  }
`);

export const MyTasksDocument = graphql(`
  query MyTasks($first: Int, $after: String, $status: TaskStatus) {
    myTasks(first: $first, after: $after, status: $status) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          ...TaskFields
        }
      }
    }
  }
`);

export const SearchTasksDocument = graphql(`
  query SearchTasks($search: String!, $first: Int, $after: String, $status: TaskStatus) {
    searchTasks(search: $search, first: $first, after: $after, status: $status) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          ...TaskFields
        }
      }
    }
  }
`);

export const AssigneesDocument = graphql(`
  query Assignees {
    accounts(first: 100) {
      edges {
        node {
          id
          username
          fullName
          role
          active
        }
      }
    }
  }
`);

export const CreateTaskDocument = graphql(`
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) {
      ...TaskFields
    }
  }
`);

export const CompleteTaskDocument = graphql(`
  mutation CompleteTask($id: ID!) {
    completeTask(id: $id) {
      ...TaskFields
    }
  }
`);

export const ShuffleTasksDocument = graphql(`
  mutation ShuffleTasks {
    shuffleTasks {
      reassigned
    }
  }
`);

export const TaskChangedDocument = graphql(`
  subscription TaskChanged($assigneeId: ID) {
    taskChanged(assigneeId: $assigneeId) {
      kind
      occurredAt
      previousAssignee {
        id
      }
      task {
        ...TaskFields
      }
    }
  }
`);

// Accounts (R-WEB-4, R-WEB-5).

export const BillingAccountDocument = graphql(`
  query BillingAccount($accountId: ID!, $first: Int, $after: String, $day: Date, $from: Date!, $to: Date!) {
    billingAccount(accountId: $accountId) {
      account {
        ...AccountFields
      }
      balance
      earnedToday
      entries(first: $first, after: $after, day: $day) {
        totalCount
        pageInfo {
          hasNextPage
          endCursor
        }
        edges {
          node {
            ...EntryFields
          }
        }
      }
      days(from: $from, to: $to) {
        date
        earned
        paidOut
      }
      payments(first: 20) {
        id
        amount
        day
        createdAt
        emailSent
      }
    }
  }
`);

export const BalanceChangedDocument = graphql(`
  subscription BalanceChanged($accountId: ID) {
    balanceChanged(accountId: $accountId) {
      accountId
      balance
      entry {
        ...EntryFields
      }
    }
  }
`);

export const BillingAccountsDocument = graphql(`
  query BillingAccounts($first: Int, $after: String) {
    billingAccounts(first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          balance
          earnedToday
          account {
            id
            username
            fullName
            role
            active
          }
        }
      }
    }
  }
`);

export const ManagementEarningsDocument = graphql(`
  query ManagementEarnings($from: Date!, $to: Date!) {
    managementEarnings(from: $from, to: $to) {
      date
      managementEarnings
    }
  }
`);

export const CloseBillingDayDocument = graphql(`
  mutation CloseBillingDay {
    closeBillingDay {
      day
      paidAccounts
      totalPaid
    }
  }
`);

// Analytics (R-WEB-6).

export const AnalyticsSummaryDocument = graphql(`
  query AnalyticsSummary($date: Date) {
    analyticsSummary(date: $date) {
      date
      managementEarnings
      negativeBalanceCount
    }
  }
`);

export const MostExpensiveDocument = graphql(`
  query MostExpensive($from: Date!, $to: Date!, $period: Period!) {
    mostExpensiveTask(from: $from, to: $to) {
      from
      to
      top {
        reward
        completedAt
        task {
          id
          title
          jiraId
        }
      }
    }
    mostExpensiveTasks(from: $from, to: $to, period: $period) {
      from
      to
      top {
        reward
        completedAt
        task {
          id
          title
          jiraId
        }
      }
    }
  }
`);

// Accounts admin (R-WEB-7).

export const AccountsDocument = graphql(`
  query Accounts($first: Int, $after: String, $role: Role) {
    accounts(first: $first, after: $after, role: $role) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...AccountFields
        }
      }
    }
  }
`);

export const SearchAccountsDocument = graphql(`
  query SearchAccounts($search: String!, $first: Int, $after: String) {
    searchAccounts(search: $search, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...AccountFields
        }
      }
    }
  }
`);

export const CreateAccountDocument = graphql(`
  mutation CreateAccount($input: CreateAccountInput!) {
    createAccount(input: $input) {
      ...AccountFields
    }
  }
`);

export const ChangeRoleDocument = graphql(`
  mutation ChangeRole($accountId: ID!, $role: Role!) {
    changeRole(accountId: $accountId, role: $role) {
      ...AccountFields
    }
  }
`);

export const DeactivateAccountDocument = graphql(`
  mutation DeactivateAccount($accountId: ID!) {
    deactivateAccount(accountId: $accountId) {
      ...AccountFields
    }
  }
`);

export const ReactivateAccountDocument = graphql(`
  mutation ReactivateAccount($accountId: ID!) {
    reactivateAccount(accountId: $accountId) {
      ...AccountFields
    }
  }
`);
